"""`dgm-grade batch`: grade every submission in a folder, resumably, and write the class's files.

1. ``roster.find_submissions`` lists the students; each gets ``OUTDIR/<student>/``.
2. A student whose ``record.json`` has today's hashes (``hashing``) is not graded again,
   unless ``regrade``; ``only`` regrades the named checks for everyone and merges them
   into the records there are.
3. The backend (``local.run_local`` or ``ray_backend.run_ray``) grades the rest, each
   submission in a child process (``job``), and hands every outcome back here, where its
   files are written, ``record.json`` last (the record is what a re-run trusts).
4. ``grades.csv``, ``gradescope_scores.csv`` and ``report.html`` are written from the
   records of every student in the folder, graded now or before.

A submission that cannot be read, crashes, hangs or exhausts memory is a row with its
reason; Ctrl-C or a kill loses only the submissions in flight.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import ValidationError

from .. import results as results_mod
from ..results import Results
from .gradebook import write_gradebook
from .hashing import inputs_hash, submission_hash
from .job import JobOutcome, JobSpec, status_of
from .records import StudentRecord
from .roster import Entry, find_submissions

Backend = Literal["local", "ray"]
DEFAULT_DEADLINE_S = 1800.0  # wall-clock seconds per submission (the judge's own budgets end far sooner)


@dataclass
class BatchOptions:
    assignment: str
    backend: Backend = "local"
    workers: int | None = None  # default: one per core (local), the cluster's CPUs (ray)
    sandbox: str = "auto"
    gpu: bool = False
    gpus_per_task: float = 1.0  # with --gpu on Ray: a fraction lets students share a GPU
    seed: int | None = None
    timeout: float | None = None
    only: list[str] | None = None
    regrade: bool = False
    ray_address: str | None = None
    deadline_s: float = DEFAULT_DEADLINE_S
    warm_start: bool | None = None  # local: keep the next child started (local.py; None: where a core is spare)


class Progress(Protocol):
    def begin(self, total: int, skipped: int) -> None: ...
    def started(self, student: str) -> None: ...
    def finished(self, record: StudentRecord) -> None: ...


@dataclass
class BatchSummary:
    out: Path
    records: list[StudentRecord]
    graded: list[str] = field(default_factory=list)  # students graded by this run
    skipped: list[str] = field(default_factory=list)  # unchanged since their record
    wall_time: float = 0.0

    @property
    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.records:
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts


def run_batch(folder: Path, out: Path, options: BatchOptions, progress: Progress | None = None) -> BatchSummary:
    started = time.monotonic()
    folder, out = Path(folder), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = find_submissions(folder, skip=out)
    inputs = inputs_hash(options.assignment, seed=options.seed, gpu=options.gpu, timeout=options.timeout)
    summary = BatchSummary(out, [])
    specs: list[JobSpec] = []
    by_student = {e.student: e for e in entries}
    for e in entries:
        spec = JobSpec(student=e.student, source=e.source(folder), path=str(e.path), name=e.name, email=e.email,
                       sid=e.sid, assignment=options.assignment, sandbox=options.sandbox, gpu=options.gpu,
                       seed=options.seed, timeout=options.timeout, only=options.only, inputs_hash=inputs,
                       submission_hash=submission_hash(e.path))
        if not options.only and not options.regrade and _up_to_date(read_record(out / e.student), spec):
            summary.skipped.append(e.student)
        else:
            specs.append(spec)
    if progress:
        progress.begin(len(entries), len(summary.skipped))

    def started_one(spec: JobSpec) -> None:
        if progress:
            progress.started(spec.student)

    def done_one(spec: JobSpec, outcome: JobOutcome) -> None:
        record = save_outcome(out / spec.student, spec, outcome, by_student[spec.student],
                              deadline_s=options.deadline_s)
        summary.graded.append(spec.student)
        if progress:
            progress.finished(record)

    try:
        if specs:
            _backend(options)(specs, started_one, done_one)
    finally:  # interrupted too: the class files cover everyone graded so far
        summary.records = [r for e in entries if (r := read_record(out / e.student)) is not None]
        if summary.records or not entries:
            write_class_files(summary.records, out, title=f"{options.assignment}: {folder.name}")
        summary.wall_time = time.monotonic() - started
    return summary


def _backend(options: BatchOptions):
    workers = options.workers
    if options.backend == "ray":
        from .ray_backend import run_ray

        gpus = options.gpus_per_task if options.gpu else 0
        return lambda specs, s, d: run_ray(specs, workers=workers, deadline_s=options.deadline_s,
                                           address=options.ray_address, gpus=gpus, started=s, done=d)
    from .local import run_local

    n = workers or max(1, os.cpu_count() or 1)
    return lambda specs, s, d: run_local(specs, workers=n, deadline_s=options.deadline_s, started=s, done=d,
                                         warm_start=options.warm_start)


def _up_to_date(record: StudentRecord | None, spec: JobSpec) -> bool:
    """Whether ``record`` is a complete grade of this very submission under today's inputs."""
    return (record is not None and not record.only and record.status != "error"
            and record.submission_hash == spec.submission_hash and record.inputs_hash == spec.inputs_hash)


def read_record(folder: Path) -> StudentRecord | None:
    try:
        return StudentRecord.model_validate_json((folder / "record.json").read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


# ---------------------------------------------------------------- one student's files


def save_outcome(folder: Path, spec: JobSpec, outcome: JobOutcome, entry: Entry, *,
                 deadline_s: float = DEFAULT_DEADLINE_S) -> StudentRecord:
    """Write a student's results.json, feedback.md and record.json (last) from a job's outcome.

    A child that wrote nothing (it died, or the grader failed) still gives the student a row and a
    results.json with the reason; ``only``: the new checks replace theirs in the earlier grade.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if outcome.files:
        record = StudentRecord.model_validate_json(outcome.files["record.json"])
        results = Results.model_validate_json(outcome.files["results.json"])
        if outcome.timed_out:
            record.status, record.reason = "timeout", f"grading took longer than {deadline_s:g} s and was stopped"
    else:
        reason = (f"grading took longer than {deadline_s:g} s and was stopped" if outcome.timed_out
                  else outcome.error or "the grading process wrote nothing")
        record = StudentRecord(student=spec.student, source=spec.source, name=entry.name, email=entry.email,
                               sid=entry.sid, status="timeout" if outcome.timed_out else "error", reason=reason[:300],
                               score=0.0, max_score=0.0, checks=[], elapsed=0.0,
                               submission_hash=spec.submission_hash, inputs_hash=spec.inputs_hash, only=spec.only or [])
        results = results_mod.failure_results(f"Not graded: {reason}", extra={"student": spec.student})
    if spec.only:
        earlier = read_record(folder)
        if earlier is not None and not earlier.only and earlier.submission_hash == spec.submission_hash:
            record, results = merge(earlier, record), merge_results(_read_results(folder), results)
    results_mod.write_results(results, folder / "results.json")
    feedback = results_mod.to_markdown(results, title=spec.student)
    results_mod.write_atomically(feedback.encode(), folder / "feedback.md")
    results_mod.write_atomically(record.model_dump_json(indent=1).encode(), folder / "record.json")
    return record


def merge(earlier: StudentRecord, new: StudentRecord) -> StudentRecord:
    """``earlier`` (a complete grade) with the checks ``new`` regraded (``--only``) replaced."""
    fresh = {c.name: c for c in new.checks}
    checks = [fresh.pop(c.name, c) for c in earlier.checks] + list(fresh.values())
    kinds = [c.kind for c in checks]
    status, reason = (new.status, new.reason) if new.status in ("unreadable", "import error") else \
        status_of("", kinds)
    return earlier.model_copy(update={
        "checks": checks, "score": round(sum(c.score for c in checks), 6),
        "max_score": sum(c.points for c in checks), "status": status, "reason": reason,
        "elapsed": round(earlier.elapsed + new.elapsed, 3), "inputs_hash": new.inputs_hash, "only": [],
        "graded_at": new.graded_at, "name": new.name or earlier.name, "email": new.email or earlier.email,
        "sid": new.sid or earlier.sid,
    })


def merge_results(earlier: Results | None, new: Results) -> Results:
    """``earlier`` results.json with ``new``'s tests in place of theirs; the summary's first line
    recounted, and a line saying which checks were regraded."""
    if earlier is None:
        return new
    fresh = {t.name: t for t in new.tests}
    tests = [fresh.pop(t.name, t) for t in earlier.tests] + list(fresh.values())
    score = round(sum(t.score for t in tests), 6)
    passed = sum(t.status == "passed" for t in tests)
    first, _, rest = earlier.output.partition("\n")
    title = first.split(": ", 1)[0] if first.startswith("**") else "**Score**"
    first = f"{title}: {score:g} / {sum(t.max_score for t in tests):g} points; {passed} of {len(tests)} checks passed."
    only = ",".join(new.extra_data.get("only", []))
    note = f"\n\nRegraded with --only {only} ({len(new.tests)} checks); the others are from the earlier grade."
    return earlier.model_copy(update={"tests": tests, "score": score, "output": first + "\n" + rest.rstrip() + note,
                                      "extra_data": {**earlier.extra_data, **new.extra_data}})


def _read_results(folder: Path) -> Results | None:
    try:
        return Results.model_validate_json((folder / "results.json").read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


# ---------------------------------------------------------------- the class's files


def write_class_files(records: list[StudentRecord], out: Path, *, title: str) -> list[Path]:
    """grades.csv, gradescope_scores.csv and report.html from the records."""
    from .class_report import write_report

    paths = list(write_gradebook(records, out))
    paths.append(write_report(records, out / "report.html", title=title))
    return paths
