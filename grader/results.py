"""results.json in the Gradescope schema (../shared/spec/grader_interface.md).

Top level: score, execution_time, output (a Markdown summary), output_format
"md", stdout_visibility "hidden", tests, extra_data (grader version, hash of
the checks, seed, sandbox, the judge's package versions, the Gradescope
submission and user ids when known). Each test: name ("function: property"),
number, score, max_score, status, output, visibility, tags.

Everything a test says goes into a fenced code block whose fence is longer
than any run of backticks inside, so nothing student code printed or raised
can close the block or inject Markdown or HTML. Strings are valid UTF-8 (lone
surrogates replaced), the JSON strict (no NaN), and the file is written
atomically; on a full disk, into the space ``reserve_results`` set aside.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:  # not imported at run time: run_autograder's placeholder must not wait for torch
    from .judge import Grade

Visibility = Literal["visible", "after_published", "hidden", "after_due_date"]
# What the judge's results depend on: a different version of any of these may draw or compare differently.
JUDGE_PACKAGES = ("dgm-grade", "torch", "hypothesis", "numpy", "safetensors", "pydantic", "nbformat", "ipython")
RESERVED_BYTES = 2 << 20  # the placeholder's size: the results of any grade fit in it


def grader_version() -> str:
    try:
        return metadata.version("dgm-grade")
    except metadata.PackageNotFoundError:  # running from a checkout without install
        return "0.1.0+checkout"


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the judge's results depend on (extra_data["versions"])."""
    versions = {}
    for name in JUDGE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class TestResult(BaseModel):
    name: str
    number: str
    score: float
    max_score: float
    status: Literal["passed", "failed"]
    output: str
    visibility: Visibility
    tags: list[str]


class Results(BaseModel):
    score: float
    execution_time: float
    output: str
    output_format: Literal["md"] = "md"
    stdout_visibility: Literal["hidden"] = "hidden"
    tests: list[TestResult]
    extra_data: dict


# ---------------------------------------------------------------- Markdown that student text cannot break


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Valid UTF-8 text: lone surrogates (from bytes decoded with surrogateescape, say) become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def code_block(text: str) -> str:
    """``text`` verbatim in a fenced code block that nothing in it can close (Markdown and HTML stay text)."""
    text = clean_text(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def to_results(grade: Grade, *, extra: dict | None = None) -> Results:
    hidden_visibility = grade.assignment.config.gradescope.hidden_visibility
    tests = [
        TestResult(
            name=clean_text(r.check.name),
            number=str(i),
            score=round(r.score, 6),
            max_score=float(r.check.points),
            status="passed" if r.passed else "failed",
            output=code_block(r.output) if r.output.strip() else "",
            visibility=hidden_visibility if r.check.hidden else "visible",
            tags=[r.check.function, *r.check.tags],
        )
        for i, r in enumerate(grade.results, start=1)
    ]
    passed = sum(r.passed for r in grade.results)
    lines = [f"**{grade.assignment.config.title}**: {grade.score:g} / {grade.max_score:g} points; "
             f"{passed} of {len(grade.results)} checks passed.", ""]
    if grade.problem:
        lines += ["Problem:", code_block(grade.problem), ""]
    for note in grade.notes:
        lines += ["Note:", code_block(note), ""]
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
            "finished": not any(r.kind == "not run" for r in grade.results),
            **({"grader_problem": grade.grader_problem} if grade.grader_problem else {}),
            "versions": package_versions(),
            **(extra or {}),
        },
    )


def to_markdown(results: Results, *, title: str = "") -> str:
    """results.json as a Markdown page a student or TA reads (``feedback.md`` of a batch): the summary,
    then every check with its points, and for each failed one what failed (already fenced)."""
    lines = [f"# {clean_text(title)}" if title else "# Feedback", "", results.output, "", "## Checks", ""]
    for t in results.tests:
        mark = "passed" if t.status == "passed" else "FAILED"
        lines.append(f"- {mark} {t.score:g}/{t.max_score:g}: {t.name}")
    failed = [t for t in results.tests if t.status == "failed" and t.output]
    if failed:
        lines += ["", "## What failed", ""]
        for t in failed:
            lines += [f"### {t.name} ({t.score:g}/{t.max_score:g})", "", t.output, ""]
    return "\n".join(lines).rstrip() + "\n"


def sandbox_description(grade: Grade) -> str:
    """The sandbox in words, its name once: the sandboxes' own descriptions start with it
    ("docker sandbox (image): uid ...", "process sandbox: ...")."""
    if grade.isolation.startswith(f"{grade.sandbox} sandbox"):
        return grade.isolation
    return f"{grade.sandbox} sandbox ({grade.isolation})" if grade.isolation else f"{grade.sandbox} sandbox"


def failure_results(message: str, *, extra: dict | None = None, score: float = 0.0) -> Results:
    """Results that say grading did not happen (score 0 unless given), with ``message`` for the student and TA."""
    return Results(score=score, execution_time=0.0, output=clean_text(message), tests=[],
                   extra_data={"grader_version": grader_version(), "versions": package_versions(), **(extra or {})})


# ---------------------------------------------------------------- writing


def dumps(results: Results) -> bytes:
    """Strict JSON (no NaN or infinity), valid UTF-8."""
    data = _clean(results.model_dump())
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_results(grade: Grade | Results, path: Path, *, extra: dict | None = None) -> Results:
    """Write results.json atomically: a fresh temp file in the same directory, renamed into place.

    The temp file is created with O_EXCL under a random name (mkstemp), so a
    file or symlink planted beside ``path`` is never written through, and
    os.replace swaps ``path`` itself (never following a symlink there).
    When the disk is full, the results go into the space a placeholder made
    by ``reserve_results`` holds at ``path`` (a regular file we own).
    """
    results = grade if isinstance(grade, Results) else to_results(grade, extra=extra)
    data = dumps(results)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomically(data, path)
    except OSError:
        if not _write_into_placeholder(data, path):
            raise
    return results


def write_atomically(data: bytes, path: Path) -> None:
    """``data`` into ``path`` through a fresh temp file beside it, renamed into place (see write_results)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def reserve_results(path: Path, results: Results) -> None:
    """Write ``results`` (what to report if grading never finishes) to ``path``, padded with spaces
    to RESERVED_BYTES: the disk space a later ``write_results`` can reuse when the disk is full."""
    data = dumps(results)
    write_atomically(data + b" " * max(0, RESERVED_BYTES - len(data)), Path(path))


def _write_into_placeholder(data: bytes, path: Path) -> bool:
    """Overwrite the regular file at ``path`` in place (its blocks are allocated) if ``data`` fits."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not (st.st_uid == os.geteuid() and st.st_nlink == 1 and st.st_size >= len(data) and (st.st_mode & 0o170000) == 0o100000):
            return False
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
