"""One student's grading, in a process of its own: what both backends run.

``grade_job(spec)`` starts ``python -m grader.batch.job`` with the spec on stdin. That
child grades exactly as ``dgm-grade grade`` does (the judge in the child, student code in
the sandbox it starts) and writes ``results.json``, ``feedback.md`` and ``record.json``
into a temporary folder; ``grade_job`` returns their contents. The caller (the batch
driver, on whatever machine) writes them into ``OUTDIR/<student>/``.

A child per submission costs an interpreter start (about 2 s, against a minute of
grading) and buys what a class needs: a judge that runs out of memory or hits a bug on
one submission takes only that row; a submission past its wall-clock budget is ended
(SIGTERM: the child writes the checks done so far, each left one failed with the
reason; SIGKILL 30 s later); cancelling a batch kills the children in flight and
nothing else; and a Ray task is the same call on another node.

The local backend hides most of that start: it keeps the next child already started
(``WarmChild``). That child imports the judge, loads the checks and starts its standby
worker (grader/standby.py) while the others grade, then waits for a spec on its stdin;
like every child it grades exactly one submission, and its worker has never held any
other code. The grade is the same either way (tests/test_batch.py compares the local
backend's gradebook with the Ray backend's, whose children start cold).
"""
from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from ..sandbox.process import die_with_parent
from .records import CheckOutcome, StudentRecord

OUTPUT_FILES = ("results.json", "feedback.md", "record.json")
MAX_PACKED_BYTES = 64 << 20  # a submission shipped to a Ray node: beyond this it is refused, not sent
KILL_GRACE_S = 30.0


class JobSpec(BaseModel):
    """Everything the child needs to grade one submission (JSON on its stdin)."""

    student: str
    source: str  # relative to the batch's input folder (for the record)
    path: str  # the submission on this machine (a file, a folder or a zip)
    name: str = ""
    email: str = ""
    sid: str = ""
    assignment: str
    sandbox: str = "auto"
    gpu: bool = False
    seed: int | None = None
    timeout: float | None = None  # per call of a student function
    only: list[str] | None = None
    inputs_hash: str = ""
    submission_hash: str = ""
    packed: dict[str, str] | None = None  # relative path -> base64 bytes: the submission, sent to another node
    out: str = ""  # set by grade_job: where the child writes its files


@dataclass
class JobOutcome:
    student: str
    files: dict[str, str] = field(default_factory=dict)  # OUTPUT_FILES -> text; empty when the child wrote nothing
    error: str = ""  # why the child failed (its exit code and last words), when it did
    timed_out: bool = False
    cancelled: bool = False


# ---------------------------------------------------------------- the caller's side


def pack(path: Path) -> dict[str, str]:
    """A submission as relative path -> base64 bytes (a file: its own name), for a node without our disk."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    total = sum(f.stat().st_size for f in files)
    if total > MAX_PACKED_BYTES:
        raise ValueError(f"{path.name} holds {total >> 20} MB; at most {MAX_PACKED_BYTES >> 20} MB are sent to a node")
    return {f.relative_to(path.parent).as_posix(): base64.b64encode(f.read_bytes()).decode() for f in files}


def unpack(packed: dict[str, str], folder: Path) -> Path:
    """Write a packed submission under ``folder``; returns the submission's path (file or folder)."""
    tops = set()
    for rel, data in packed.items():
        target = (folder / rel).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise ValueError(f"refusing a packed path outside the folder: {rel!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))
        tops.add(Path(rel).parts[0])
    if len(tops) != 1:
        raise ValueError("a packed submission has one top-level file or folder")
    return folder / tops.pop()


class Prepared(BaseModel):
    """What every submission of a batch shares: a warm child prepares its grading from it."""

    assignment: str
    sandbox: str = "auto"
    gpu: bool = False
    seed: int | None = None
    timeout: float | None = None
    only: list[str] | None = None

    @classmethod
    def of(cls, spec: JobSpec) -> "Prepared":
        return cls(**spec.model_dump(include=set(cls.model_fields)))


def _start_child(stderr_path: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the judge's tensors are small (judge.py: one torch thread)
    parent = os.getpid()  # SIGTERM (the child writes what it has) when this thread dies: a killed batch, a
    #                       cancelled Ray task
    with open(stderr_path, "wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "grader.batch.job"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=stderr, env=env, start_new_session=True,
                                preexec_fn=lambda: die_with_parent(parent, signal.SIGTERM))


def _send(proc: subprocess.Popen, line: str, *, close: bool) -> None:
    """One JSON line to a child's stdin (and the end of its input when ``close``)."""
    try:
        proc.stdin.write(line.encode() + b"\n")
        proc.stdin.flush()
        if close:
            proc.stdin.close()
    except (BrokenPipeError, ValueError):
        pass  # it died: grade_job reports how


class WarmChild:
    """A child started before its submission is known (see the module docstring): it prepares the grading
    ``prepared`` describes and waits for one spec (``grade_job(..., child=this)``), or is ``close``d unused."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.folder = Path(tempfile.mkdtemp(prefix="dgm-batch-job-"))
        self.proc = _start_child(self.folder / "stderr.txt")
        _send(self.proc, prepared.model_dump_json(), close=False)

    def fits(self, spec: JobSpec) -> bool:
        return Prepared.of(spec) == self.prepared and self.proc.poll() is None

    def close(self) -> None:
        """End it (its standby worker dies with it: a process sandbox's worker by PR_SET_PDEATHSIG, a
        container when its input closes) and remove its folder."""
        _kill(self.proc, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


def grade_job(spec: JobSpec, *, deadline_s: float, cancel: threading.Event | None = None,
              child: WarmChild | None = None) -> JobOutcome:
    """Grade one submission in a child process; at most ``deadline_s`` seconds of wall time.

    ``cancel``: set it to end the child at once (the outcome is ``cancelled``, with no files);
    ``child``: a warm child to grade it in (ended here either way), else one is started.
    """
    if child is not None and not child.fits(spec):
        child.close()
        child = None
    with tempfile.TemporaryDirectory(prefix="dgm-batch-job-") as tmp:
        spec = spec.model_copy(update={"out": tmp})
        if child is not None:  # its stderr file lives in its own folder, removed with it
            proc, stderr_path = child.proc, child.folder / "stderr.txt"
        else:
            stderr_path = Path(tmp) / "stderr.txt"
            proc = _start_child(stderr_path)
        _send(proc, spec.model_dump_json(), close=True)
        try:
            return _wait_for(proc, spec, Path(tmp), stderr_path, deadline_s, cancel)
        finally:
            if child is not None:
                child.close()


def _wait_for(proc: subprocess.Popen, spec: JobSpec, tmp: Path, stderr_path: Path, deadline_s: float,
              cancel: threading.Event | None) -> JobOutcome:
    """Wait for the child grading ``spec`` into ``tmp``: its files, or why there are none."""
    outcome = JobOutcome(spec.student)
    started = time.monotonic()
    while True:
        try:
            proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            _kill(proc, signal.SIGKILL)
            outcome.cancelled = True
            return outcome
        if time.monotonic() - started > deadline_s and not outcome.timed_out:
            outcome.timed_out = True  # SIGTERM: the child writes what it has; SIGKILL after the grace
            _kill(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill(proc, signal.SIGKILL)
            break
    _kill(proc, signal.SIGKILL)  # whatever the child left in its session (the judge's own helpers)
    if all((tmp / f).is_file() for f in OUTPUT_FILES):
        outcome.files = {f: (tmp / f).read_text(encoding="utf-8") for f in OUTPUT_FILES}
    elif not outcome.timed_out:
        last = stderr_path.read_bytes()[-1500:].decode("utf-8", "replace").strip() if stderr_path.is_file() else ""
        outcome.error = f"the grading process ended with exit code {proc.returncode}" + (f": {last}" if last else "")
    return outcome


def _kill(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    if sig == signal.SIGKILL:
        proc.wait()


# ---------------------------------------------------------------- the child's side


def failure_kind(result) -> str:  # result: judge.CheckResult
    """Why a check failed (judge.KINDS; "" when it passed)."""
    return "" if result.passed else (result.kind or "wrong")


def status_of(problem: str, kinds: list[str]) -> tuple[str, str]:
    """(status, reason) of a whole submission from its problem and its checks' failure kinds: the worst
    thing that happened (records.STATUSES)."""
    if "unreadable" in kinds:
        return "unreadable", problem
    if problem and ("could not be imported" in problem or "defines none" in problem):
        return "import error", problem.splitlines()[0]
    if "not run" in kinds:  # stopped (the batch's deadline) or the grader's sandbox failed: grade it again
        return "error", (problem.splitlines() or ["grading did not finish"])[0]
    for kind in ("timeout", "memory", "crash"):
        if kind in kinds:
            return kind, f"{kinds.count(kind)} check(s) failed by {kind}"
    if problem:  # stopped by a signal (the batch's deadline)
        return "error", problem.splitlines()[0]
    return "graded", ""


def make_record(spec: JobSpec, grade) -> StudentRecord:
    """The batch's record of a grade (a judge.Grade)."""
    from ..results import clean_text
    from .hashing import ast_hash

    checks = [CheckOutcome(id=r.check.id, name=r.check.name, function=r.check.function, points=r.check.points,
                           score=round(r.score, 6), passed=r.passed, kind=failure_kind(r),
                           output=clean_text(r.output)[:4000])  # plain text: the report escapes it
              for r in grade.results]
    status, reason = status_of(grade.problem, [c.kind for c in checks])
    similar = ast_hash(grade.source) if grade.source else ""
    handout = grade.assignment.path / "handout" / f"{grade.assignment.config.module}.py"
    if similar and handout.is_file() and similar == ast_hash(handout.read_bytes()):
        similar = ""  # the blank handout: alike by design, not worth a TA's look
    return StudentRecord(
        student=spec.student, source=spec.source, name=spec.name, email=spec.email, sid=spec.sid,
        status=status, reason=reason[:300], score=round(grade.score, 6), max_score=grade.max_score, checks=checks,
        elapsed=round(grade.elapsed, 3), submission_hash=spec.submission_hash, inputs_hash=spec.inputs_hash,
        ast_hash=similar, only=spec.only or [],
        graded_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def prepare(prepared: Prepared):
    """A warm child's head start: the sandbox, a standby worker, the checks loaded (a ``Ready``), or None
    when any of it failed (the submission is then graded the ordinary way, which reports why)."""
    from .. import api
    from ..standby import start_standby

    standby = None
    try:
        box = api.sandbox_for(api.assignment_config(prepared.assignment).limits.sandbox_limits(),
                              kind=prepared.sandbox, gpu=prepared.gpu)
        standby = start_standby(box)
        grading = api.prepare_grading(assignment_id=prepared.assignment, hidden=True, sandbox=box,
                                      only=prepared.only, seed=prepared.seed, timeout=prepared.timeout, gpu=prepared.gpu)
    except Exception:
        if standby is not None:
            standby.close()
        return None
    return Ready(prepared, grading, standby)


@dataclass
class Ready:
    """A prepared grading (api.Grading) and its standby worker, for the one spec that matches ``prepared``."""

    prepared: Prepared
    grading: object
    standby: object

    def close(self) -> None:
        if self.standby is not None:
            self.standby.close()


def run_child(spec: JobSpec, ready: Ready | None = None) -> None:
    """Grade ``spec`` and write OUTPUT_FILES into ``spec.out`` (the child process's work); ``ready``: what a
    warm child prepared (used when it matches the spec)."""
    from .. import api, results as results_mod
    from ..stopping import stop_on_signals

    out = Path(spec.out)
    path = Path(spec.path)
    if spec.packed is not None:
        path = unpack(spec.packed, out / "submission")
    extra = {"student": spec.student, **({"only": spec.only} if spec.only else {})}
    if ready is not None and ready.prepared != Prepared.of(spec):
        ready.close()
        ready = None
    with stop_on_signals():
        if ready is not None:
            api.check_grading_options(path, spec.timeout)
            grade = ready.grading.grade(path, standby=ready.standby)
        else:
            grade = api.run_grading(submission=path, assignment_id=spec.assignment, hidden=True,
                                    sandbox=spec.sandbox, gpu=spec.gpu, seed=spec.seed, timeout=spec.timeout,
                                    only=spec.only)
        results = results_mod.to_results(grade, extra=extra)
        record = make_record(spec, grade)
        results_mod.write_results(results, out / "results.json")
        (out / "feedback.md").write_text(results_mod.to_markdown(results, title=spec.student), encoding="utf-8")
        (out / "record.json").write_text(record.model_dump_json(indent=1), encoding="utf-8")


def main() -> None:
    """stdin: one JobSpec line (a cold child), or a Prepared line, then, when the driver has a submission for
    it, one JobSpec line (a warm child; end of input instead: it ends unused)."""
    first = json.loads(sys.stdin.readline() or "null")
    if first is None:
        sys.exit("grader.batch.job: no job on stdin")
    if "student" in first:
        run_child(JobSpec.model_validate(first))
        return
    ready = prepare(Prepared.model_validate(first))
    line = sys.stdin.readline()
    if not line.strip():
        if ready is not None:
            ready.close()
        return
    run_child(JobSpec.model_validate_json(line), ready)


if __name__ == "__main__":
    main()
