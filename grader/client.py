"""The judge's side of one submission's worker: start, load, call, restart.

``WorkerClient.call`` sends one request and decodes the response itself
(JSON + safetensors, never pickle). Every way the worker can misbehave maps
to one of two exceptions:

- ``StudentError``: the student's function raised, is missing, or the module
  could not be imported. The check fails with the student's message.
- ``WorkerFault``: the worker timed out, died, or sent a bad frame. The check
  fails, the worker is killed, and a fresh one is started for the next call.
  It derives from BaseException so hypothesis stops at once instead of
  shrinking (which would re-run the hang or crash many times).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .sandbox.base import (RequestStalled, Sandbox, SandboxUnavailable, Session, WorkerGone, WorkerHandle,
                           WorkerTimeout)
from .worker import protocol

if TYPE_CHECKING:
    from .standby import Standby


STARTUP_TIMEOUT = 120  # seconds for a fresh worker to import torch and answer a ping


class StudentError(Exception):
    """The student's code raised, or a name it must define is missing."""

    def __init__(self, function: str, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.function, self.message, self.traceback = function, message, traceback
        self.handout = ""  # what the handout says about the property being checked (set by a check)


class WorkerFault(BaseException):
    """The worker hung, died or broke the protocol while running ``function``.

    ``brief``: one line when the reason is about the whole submission (the report groups those);
    ``kind``: "timeout", "crash" (died, malformed or forged replies) or "skipped" (restart budget spent).
    """

    def __init__(self, function: str, reason: str, brief: str = "", kind: str = "crash") -> None:
        super().__init__(reason)
        self.function, self.reason, self.brief, self.kind = function, reason, brief, kind


class SandboxLost(BaseException):
    """The sandbox could not start a worker in the middle of grading (the Docker daemon stopped, no
    worker uid is free...): the grader's environment failed, not the submission, so grading stops.
    A BaseException, like WorkerFault, so that hypothesis does not catch and replay it."""


class _NotRepeated:
    def __repr__(self) -> str:
        return "NOT_REPEATED"


NOT_REPEATED = _NotRepeated()  # a reply without the second call's result


@dataclass
class CallResult:
    """A decoded reply. ``grads`` and ``inputs_after`` are keyed by id() of the judge's own objects.

    ``repeated``: the result of calling the function a second time on the same objects with the same seed
    (``NOT_REPEATED`` unless the call asked for it); ``exact``: whether the two must agree bit for bit
    (on the CPU; GPU kernels may reorder sums).
    """

    value: Any
    grads: dict = field(default_factory=dict)
    inputs_after: dict | None = None
    elapsed: float = 0.0
    repeated: Any = NOT_REPEATED
    control: Any = NOT_REPEATED  # the same call on inputs built afresh (same seed), with ``repeated``
    exact: bool = True

    def grad(self, obj: Any) -> Any:
        """The gradient for a tensor (a tensor or None) or a Fixture (a dict name -> tensor or None)."""
        return self.grads.get(id(obj))

    def input_after(self, obj: torch.Tensor) -> torch.Tensor | None:
        return (self.inputs_after or {}).get(id(obj))


@dataclass
class ModuleStatus:
    """What the worker said when it imported the student module."""

    ok: bool
    names: frozenset[str] = frozenset()
    error: str = ""
    traceback: str = ""


class WorkerClient:
    """One submission's worker, started lazily and restarted after faults."""

    def __init__(
        self,
        sandbox: Sandbox,
        files: dict[str, bytes],
        module_name: str,
        *,
        import_timeout: float = 60.0,
        max_frame_bytes: int = 256 << 20,
        device: str = "cpu",
        max_restarts: int = 20,
        import_budget: float = 180.0,
        standby: "Standby | None" = None,
    ) -> None:
        """``standby``: a worker started before the submission was known (grader/standby.py), used for
        the first start instead of starting one; it gets the files over the protocol."""
        self.sandbox, self.files, self.module_name = sandbox, files, module_name
        self.import_timeout = import_timeout
        self.max_restarts, self.import_budget = max_restarts, import_budget
        self.max_frame_bytes = max_frame_bytes
        self.device = device
        self.worker: WorkerHandle | None = None
        self._waiting: WorkerHandle | None = None  # the standby's worker, until the first start takes it
        if standby is not None:
            self.session, self._waiting = standby.claim()
        else:
            self.session = Session(files)
        self.status: ModuleStatus | None = None
        self.timed_out: dict[str, str] = {}  # function -> reason; its later checks fail without running
        self.output: list[str] = []  # what the student printed, since the last take_output()
        self.import_output = ""  # what the module printed when it was first imported
        self.restarts = 0  # workers started after the first
        self.import_seconds = 0.0  # spent importing the module, over every start

    # ---------------------------------------------------------------- lifecycle
    def module(self) -> ModuleStatus:
        """Import the student module (once) and report what it defines."""
        if self.status is None:
            self._start()
        assert self.status is not None
        return self.status

    def _start(self) -> None:
        if self.worker is not None:
            self.worker.kill()
        if self.status is not None:  # a restart: the last worker may have changed its files
            self.restarts += 1
            self.session.reset_work(self.files, getattr(self.sandbox, "owner", None))
        deliver = self._waiting is not None  # a standby worker: its work folder is still empty
        try:
            if deliver:
                self.worker, self._waiting = self._waiting, None
            else:
                self.worker = self.sandbox.start(self.session)
        except SandboxUnavailable as exc:
            self.worker = None
            raise SandboxLost(str(exc)) from None
        except OSError as exc:  # the interpreter cannot be run as the worker's user, say
            self.worker = None
            self.status = ModuleStatus(False, error=f"the grading worker could not be started ({exc}); this is "
                                       "not your code's fault: ask your TA")
            return
        try:  # torch is imported before any student code: that start-up is not the import's time
            self._exchange({"op": "ping"}, {}, STARTUP_TIMEOUT)
            if deliver:
                self._deliver_files()
        except (WorkerTimeout, WorkerGone, protocol.ProtocolError) as exc:
            self._kill()
            self.status = ModuleStatus(False, error=f"the grading worker did not start within {STARTUP_TIMEOUT} s "
                                       f"({type(exc).__name__}); this is not your code's fault: ask your TA")
            return
        started = time.monotonic()
        try:
            reply, _ = self._exchange({"op": "load", "module": self.module_name}, {}, self.import_timeout)
        except WorkerTimeout:
            self._kill()
            self.status = ModuleStatus(False, error=(
                f"importing {self.module_name} did not finish within {self.import_timeout:.0f} s: the module "
                "probably trains a model or loads data at top level. Put that code under "
                "`if __name__ == \"__main__\":` (indented below it) so it runs when you run the file, "
                "not when the grader imports it"))
            return
        except (WorkerGone, protocol.ProtocolError) as exc:
            self._kill()
            self.status = ModuleStatus(False, error=f"the worker died while importing {self.module_name} ({exc}): "
                                       "does the module call os._exit, crash, or exhaust memory at import?")
            return
        finally:
            self.import_seconds += time.monotonic() - started
        printed = self.take_output()  # kept apart: it belongs to no check
        if self.status is None:  # the first import (a restart imports, and prints, again)
            self.import_output = printed
        if reply.get("ok"):
            names = reply.get("names")  # student code may have forged this frame: trust only its shape
            names = names if isinstance(names, list) else []
            self.status = ModuleStatus(True, names=frozenset(n for n in names if isinstance(n, str)))
        else:
            self.status = ModuleStatus(False, error=str(reply.get("error", "import failed"))[:500],
                                       traceback=str(reply.get("traceback", ""))[-3000:])
            self._kill()

    def _deliver_files(self) -> None:
        """Send the student's files to a standby worker (bytes as uint8 tensors); before any student code
        runs, so a refusal is the worker's fault (a ProtocolError), not the student's."""
        names, tensors = {}, {}
        for i, (name, data) in enumerate(sorted(self.files.items())):
            names[name] = f"f{i}"
            tensors[f"f{i}"] = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else \
                torch.empty(0, dtype=torch.uint8)
        reply, _ = self._exchange({"op": "files", "files": names}, tensors, STARTUP_TIMEOUT)
        if not reply.get("ok"):
            raise protocol.ProtocolError(f"the worker refused the files: {str(reply.get('error'))[:200]}")

    def restart_budget_spent(self) -> str:
        """Why no further worker may start for this submission ("" while it may): each restart imports
        the module again, so a slow import and a crash in every call would otherwise cost an import per check."""
        if self.restarts >= self.max_restarts:
            return (f"the worker was restarted {self.restarts} times after crashes, timeouts or bad replies, the most "
                    "one submission gets; the remaining checks are not run")
        if self.import_seconds >= self.import_budget:
            return (f"importing {self.module_name} took {self.import_seconds:.1f} s over {self.restarts + 1} starts of "
                    f"the worker, more than the {self.import_budget:g} s one submission gets; the remaining checks are "
                    "not run")
        return ""

    def _kill(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def close(self) -> None:
        self._kill()
        if self._waiting is not None:  # a standby never used (no check ran)
            self._waiting.kill()
            self._waiting = None
        self.session.remove()

    def take_output(self) -> str:
        text, self.output = "".join(self.output), []
        return text

    # ---------------------------------------------------------------- calls
    def call(
        self,
        fn: str,
        args: tuple = (),
        kwargs: dict | None = None,
        *,
        wrt: tuple = (),
        output: tuple[int, ...] = (),
        cotangent: torch.Tensor | None = None,
        return_inputs: bool = False,
        repeat: bool = False,
        seed: int = 0,
        default_dtype: torch.dtype | None = None,
        timeout: float = 30.0,
    ) -> CallResult:
        """Call the student's ``fn(*args, **kwargs)`` in the worker.

        wrt: argument objects (tensors or Fixtures, by identity) to differentiate
             with respect to; output: index path of the output to differentiate;
             cotangent: the vector of the vector-Jacobian product (default ones);
        repeat: call it a second time on the same objects and return that result too (``repeated``).
        """
        owner = fn.split(".")[0]
        if owner in self.timed_out:
            raise WorkerFault(fn, self.timed_out[owner], kind="timeout")
        status = self.module()
        if not status.ok:
            raise StudentError(fn, f"the submission could not be imported: {status.error}", status.traceback)
        if self.worker is None:
            spent = self.restart_budget_spent()
            if spent:
                raise WorkerFault(fn, f"skipped: {spent}", brief="skipped: the worker restart budget is spent",
                                  kind="skipped")
            self._start()
            if not self.status or not self.status.ok:
                raise WorkerFault(fn, f"the worker could not be restarted: {self.status.error if self.status else ''}")
        enc = protocol.Encoder()
        header: dict[str, Any] = {
            "op": "call",
            "id": int.from_bytes(os.urandom(6), "big"),  # random: a counter would tell the worker which call this is
            "fn": fn,
            "args": enc.encode(list(args)),
            "kwargs": enc.encode(dict(kwargs or {})),
            "seed": seed,
            "device": self.device,
            "return_inputs": return_inputs,
        }
        if repeat:
            header["repeat"] = True
        if default_dtype is not None:
            header["default_dtype"] = str(default_dtype).removeprefix("torch.")
        if wrt:
            grad: dict[str, Any] = {"wrt": [enc.key_of(w) for w in wrt], "output": list(output)}
            if cotangent is not None:
                grad["cotangent"] = enc.encode(cotangent)["__tensor__"]
            header["grad"] = grad
        try:
            reply, tensors = self._exchange(header, enc.tensors, timeout)
        except RequestStalled:
            self._kill()
            reason = (f"the worker did not take the request for {fn} within {timeout:.1f} s: it reads it too slowly "
                      "(does the module replace how the grader's worker reads?); its remaining checks are skipped")
            self.timed_out[owner] = reason
            raise WorkerFault(fn, reason, kind="timeout") from None
        except WorkerTimeout:
            self._kill()
            reason = f"{fn} did not finish within {timeout:.1f} s (its remaining checks are skipped)"
            self.timed_out[owner] = reason
            raise WorkerFault(fn, reason, kind="timeout") from None
        except WorkerGone:
            killed_for = self.worker.killed_for() if self.worker else ""
            self._kill()
            limit, _, why = killed_for.partition(": ")  # "memory: ..." or "disk: ..." (the sandbox's limits)
            if limit in ("memory", "disk"):
                raise WorkerFault(fn, f"the worker was killed while running {fn}: {why} (the {limit} limit)",
                                  kind=limit) from None
            lost = self.sandbox.lost()
            if lost:  # the worker died with its sandbox (the Docker daemon stopped): not the submission's doing
                raise SandboxLost(lost) from None
            raise WorkerFault(fn, f"the worker died while running {fn} (crash, os._exit or memory limit)") from None
        except protocol.ProtocolError as exc:
            self._kill()
            raise WorkerFault(fn, f"the worker's reply to {fn} was malformed: {exc}") from None
        if reply.get("id") != header["id"]:
            self._kill()
            raise WorkerFault(fn, f"the worker's reply to {fn} did not answer the request (forged or stale frame)")
        if not reply.get("ok"):
            kind = reply.get("kind")
            message = str(reply.get("error", "failed"))[:1000]
            if kind == "missing":
                message = f"{message} (the submission must define it with this exact name)"
            raise StudentError(fn, message, str(reply.get("traceback", ""))[-3000:])
        devices = frozenset({"cpu"} | ({"cuda", "cuda:0"} if self.device.startswith("cuda") else set()))
        try:
            value = protocol.decode_plain(reply.get("result"), tensors, devices)
            grads = {k: protocol.decode_plain(v, tensors, devices) for k, v in (reply.get("grads") or {}).items()}
            after = reply.get("inputs_after")
            inputs_after = {k: protocol.decode_plain(v, tensors, devices) for k, v in after.items()} if after else None
            repeated = protocol.decode_plain(reply["repeat_result"], tensors, devices) \
                if repeat and "repeat_result" in reply else NOT_REPEATED
            control = protocol.decode_plain(reply["control_result"], tensors, devices) \
                if repeat and "control_result" in reply else NOT_REPEATED
        except (protocol.ProtocolError, AttributeError, TypeError) as exc:
            self._kill()
            raise WorkerFault(fn, f"the worker's reply to {fn} was malformed: {exc}") from None
        return CallResult(
            value=value,
            grads={id(enc.objects[k]): g for k, g in grads.items() if k in enc.objects},
            inputs_after={id(enc.objects[k]): t for k, t in inputs_after.items() if k in enc.objects} if inputs_after else None,
            elapsed=float(reply.get("elapsed", 0.0)) if isinstance(reply.get("elapsed"), (int, float)) else 0.0,
            repeated=repeated if repeat else NOT_REPEATED,
            control=control if repeat else NOT_REPEATED,
            exact=not self.device.startswith("cuda"),
        )

    def _exchange(self, header: dict, tensors: dict, timeout: float) -> tuple[dict, dict]:
        """Send one request and read its reply, both within ``timeout`` seconds."""
        assert self.worker is not None
        deadline = time.monotonic() + timeout
        self.worker.write(protocol.pack_frame(header, tensors), deadline)
        reply, out = protocol.read_frame(lambda n: self.worker.read_exact(n, deadline), self.max_frame_bytes,
                                         protocol.MAX_REPLY_TENSORS)
        text = reply.get("output")
        if isinstance(text, str) and text:
            self.output.append(text[:4000])
        return reply, out
