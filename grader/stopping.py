"""Stopping a grading run on SIGTERM or SIGINT (``stop_on_signals``), without importing torch.

The CLI enters ``stop_on_signals`` before the judge (and torch) is imported, so a
signal during start-up is recorded too; ``grader.judge`` reads ``STOP`` between
and during checks.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass


class Interrupted(BaseException):
    """A signal stopped grading (a BaseException, like WorkerFault: hypothesis must not catch it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class StopSignal:
    """The signal that asked grading to stop (``stop_on_signals``, while ``active``); ``armed`` while a
    check runs, when the handler raises Interrupted at once instead of only recording the signal."""

    signum: int | None = None
    armed: bool = False
    active: bool = False

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


STOP = StopSignal()


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
    """While in this block, SIGTERM and SIGINT stop grading: ``grade`` ends the running check and
    skips the rest (``STOP.signum`` says which signal); outside a check, the signal is recorded
    only, so writing results is never cut short. Yields ``STOP``. Main thread only (else a no-op)."""
    STOP.signum, STOP.armed = None, False
    if threading.current_thread() is not threading.main_thread():
        yield STOP
        return
    STOP.active = True

    def handler(signum, frame):
        STOP.signum = STOP.signum or signum
        if STOP.armed:
            STOP.armed = False
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield STOP
    finally:
        STOP.active = False  # signum stays, for the caller to read
        for s, h in previous.items():
            if signal.getsignal(s) is handler:  # not wrapped since (the docker sandbox chains to it)
                signal.signal(s, h)
