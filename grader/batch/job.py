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
"""
from __future__ import annotations

import base64
import datetime
import os
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


def grade_job(spec: JobSpec, *, deadline_s: float, cancel: threading.Event | None = None) -> JobOutcome:
    """Grade one submission in a child process; at most ``deadline_s`` seconds of wall time.

    ``cancel``: set it to end the child at once (the outcome is ``cancelled``, with no files).
    """
    with tempfile.TemporaryDirectory(prefix="dgm-batch-job-") as tmp:
        spec = spec.model_copy(update={"out": tmp})
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the judge's tensors are small (judge.py: one torch thread)
        with open(Path(tmp) / "stderr.txt", "wb") as stderr:
            parent = os.getpid()  # SIGTERM (the child writes what it has) when this thread dies: a killed
            #                       batch, a cancelled Ray task
            proc = subprocess.Popen([sys.executable, "-m", "grader.batch.job"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=stderr, env=env, start_new_session=True,
                                    preexec_fn=lambda: die_with_parent(parent, signal.SIGTERM))
            try:
                proc.stdin.write(spec.model_dump_json().encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass
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
        if all((Path(tmp) / f).is_file() for f in OUTPUT_FILES):
            outcome.files = {f: (Path(tmp) / f).read_text(encoding="utf-8") for f in OUTPUT_FILES}
        elif not outcome.timed_out:
            last = (Path(tmp) / "stderr.txt").read_bytes()[-1500:].decode("utf-8", "replace").strip()
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


def run_child(spec: JobSpec) -> None:
    """Grade ``spec`` and write OUTPUT_FILES into ``spec.out`` (the child process's work)."""
    from .. import api, results as results_mod
    from ..stopping import stop_on_signals

    out = Path(spec.out)
    path = Path(spec.path)
    if spec.packed is not None:
        path = unpack(spec.packed, out / "submission")
    extra = {"student": spec.student, **({"only": spec.only} if spec.only else {})}
    with stop_on_signals():
        grade = api.run_grading(submission=path, assignment_id=spec.assignment, hidden=True,
                                sandbox=spec.sandbox, gpu=spec.gpu, seed=spec.seed, timeout=spec.timeout,
                                only=spec.only)
        results = results_mod.to_results(grade, extra=extra)
        record = make_record(spec, grade)
        results_mod.write_results(results, out / "results.json")
        (out / "feedback.md").write_text(results_mod.to_markdown(results, title=spec.student), encoding="utf-8")
        (out / "record.json").write_text(record.model_dump_json(indent=1), encoding="utf-8")


def main() -> None:
    spec = JobSpec.model_validate_json(sys.stdin.read())
    run_child(spec)


if __name__ == "__main__":
    main()
