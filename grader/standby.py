"""Standby workers: started before their submission is known, so that grading need not wait for one.

Starting a worker costs about as much as importing torch (the worker imports
it before any student code). A ``Standby`` is that start done early: a fresh
worker in its sandbox, with an empty work folder, importing torch while the
judge does something else: importing its own modules and torch (``check`` and
``grade`` start one first thing, so two cores work at once), or waiting for
the next save (``check --watch`` keeps the next worker waiting).

What a waiting worker holds: the worker package and nothing else; it has
never seen student code. The student's files reach it over the protocol
(op ``files``, see grader/worker/main.py) just before it imports them (op
``load``), and it serves exactly one submission, like every worker: the
client that claims it ends it with the submission (``WorkerClient.close``).
Restarts after a crash or a timeout start a worker the ordinary way.

The same object works for every sandbox (process, docker, unisolated): it
only needs ``Sandbox.start`` and a session, so a batch could keep one per
slot the same way.
"""
from __future__ import annotations

from .sandbox.base import Sandbox, Session, WorkerHandle

# Room kept in a standby worker's work folder for the files it will get: the most a submission
# may hold (grader/submission.py MAX_TOTAL_BYTES; not imported here, to start the worker sooner).
RESERVE_BYTES = 100 << 20


class Standby:
    """One started worker waiting for a submission (``claim``), or ended unused (``close``)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.session: Session | None = Session({}, reserve_bytes=RESERVE_BYTES)
        self.worker: WorkerHandle | None = None
        try:
            self.worker = sandbox.start(self.session)
        except BaseException:
            self.close()
            raise

    def claim(self) -> tuple[Session, WorkerHandle]:
        """The session and its worker, now the caller's to use once and end; the standby is spent."""
        if self.session is None or self.worker is None:
            raise RuntimeError("this standby worker was already claimed or closed")
        session, worker = self.session, self.worker
        self.session = self.worker = None
        return session, worker

    def close(self) -> None:
        """End the worker and remove its session, unless claimed (idempotent)."""
        if self.worker is not None:
            self.worker.kill()
            self.worker = None
        if self.session is not None:
            self.session.remove()
            self.session = None

    def __enter__(self) -> "Standby":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_standby(sandbox: Sandbox) -> Standby | None:
    """A standby worker, or None when one cannot start now (the first real start will say why)."""
    try:
        return Standby(sandbox)
    except OSError:
        return None
