"""results.json in the Gradescope schema (../shared/spec/grader_interface.md).

Top level: score, execution_time, output, tests, extra_data (grader version,
hash of the checks, seed, sandbox). Each test: name ("function: property"),
number, score, max_score, status, output, visibility, tags.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from .judge import Grade


def grader_version() -> str:
    try:
        return metadata.version("dgm-grade")
    except metadata.PackageNotFoundError:  # running from a checkout without install
        return "0.1.0+checkout"


class TestResult(BaseModel):
    name: str
    number: str
    score: float
    max_score: float
    status: Literal["passed", "failed"]
    output: str
    visibility: Literal["visible", "after_published", "hidden", "after_due_date"]
    tags: list[str]


class Results(BaseModel):
    score: float
    execution_time: float
    output: str
    tests: list[TestResult]
    extra_data: dict


def to_results(grade: Grade) -> Results:
    tests = [
        TestResult(
            name=r.check.name,
            number=str(i),
            score=round(r.score, 6),
            max_score=float(r.check.points),
            status="passed" if r.passed else "failed",
            output=r.output,
            visibility="after_published" if r.check.hidden else "visible",
            tags=[r.check.function, *r.check.tags],
        )
        for i, r in enumerate(grade.results, start=1)
    ]
    lines = [f"{grade.assignment.config.title}: {grade.score:g} / {grade.max_score:g} points."]
    if grade.problem:
        lines.append(f"Problem: {grade.problem}")
    lines += [f"Note: {n}" for n in grade.notes]
    lines.append(f"Graded in the {sandbox_description(grade)}; seed {grade.seed}.")
    return Results(
        score=round(grade.score, 6),
        execution_time=round(grade.elapsed, 3),
        output="\n".join(lines),
        tests=tests,
        extra_data={
            "grader_version": grader_version(),
            "assignment": grade.assignment.id,
            "checks_hash": grade.assignment.checks_hash,
            "seed": grade.seed,
            "sandbox": grade.sandbox,
            "isolation": grade.isolation,
        },
    )


def sandbox_description(grade: Grade) -> str:
    """The sandbox in words, its name once: the sandboxes' own descriptions start with it
    ("docker sandbox (image): uid ...", "process sandbox: ...")."""
    if grade.isolation.startswith(f"{grade.sandbox} sandbox"):
        return grade.isolation
    return f"{grade.sandbox} sandbox ({grade.isolation})" if grade.isolation else f"{grade.sandbox} sandbox"


def write_results(grade: Grade, path: Path) -> Results:
    """Write results.json atomically: a fresh temp file in the same directory, renamed into place.

    The temp file is created with O_EXCL under a random name (mkstemp), so a
    file or symlink planted beside ``path`` is never written through, and
    os.replace swaps ``path`` itself (never following a symlink there).
    """
    results = to_results(grade)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(results.model_dump(), indent=2))
            f.flush()
            os.fchmod(f.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return results
