"""The class's scores as CSV: ``grades.csv`` for the TA, ``gradescope_scores.csv`` for Gradescope.

``grades.csv``: one row per student (id, name, email, SID, status, total, max, seconds,
reason), then one column per check (its id, as ``--only`` takes it) with the points
scored. ``gradescope_scores.csv``: Name, SID, Email, Score, the columns Gradescope's
"Upload Scores" matches on (Email, or SID when the roster has it).

Student-controlled text (names, reasons) is neutralised for spreadsheets: a cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read as a
formula, so it gets a leading apostrophe (OWASP's advice for CSV injection).
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from .records import StudentRecord

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: numbers as they are, formula-like text defused."""
    if isinstance(value, (int, float)):
        return value
    text = str(value).replace("\0", "")
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def check_columns(records: list[StudentRecord]) -> list[str]:
    """Check ids in the order of the fullest record (every record of a batch has the same checks)."""
    columns: list[str] = []
    for r in sorted(records, key=lambda r: -len(r.checks)):
        for c in r.checks:
            if c.id not in columns:
                columns.append(c.id)
    return columns


def grades_csv(records: list[StudentRecord]) -> str:
    columns = check_columns(records)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "name", "email", "sid", "status", "score", "max_score", "seconds", "reason",
                     *columns])
    for r in records:
        scores = {c.id: c.score for c in r.checks}
        writer.writerow([cell(v) for v in (r.student, r.name, r.email, r.sid, r.status, r.score, r.max_score,
                                           round(r.elapsed, 1), r.reason)]
                        + [scores.get(c, "") for c in columns])
    return out.getvalue()


def gradescope_csv(records: list[StudentRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Name", "SID", "Email", "Score"])
    for r in records:
        writer.writerow([cell(r.name or r.student), cell(r.sid), cell(r.email), r.score])
    return out.getvalue()


def write_text_atomically(path: Path, text: str) -> None:
    """A temp file beside ``path``, renamed into place: a reader sees the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_gradebook(records: list[StudentRecord], out: Path) -> tuple[Path, Path]:
    write_text_atomically(out / "grades.csv", grades_csv(records))
    write_text_atomically(out / "gradescope_scores.csv", gradescope_csv(records))
    return out / "grades.csv", out / "gradescope_scores.csv"
