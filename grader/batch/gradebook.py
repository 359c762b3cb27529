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
from pathlib import Path

from ..results import write_atomically
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


def write_gradebook(records: list[StudentRecord], out: Path) -> tuple[Path, Path]:
    write_atomically(grades_csv(records).encode(), out / "grades.csv")
    write_atomically(gradescope_csv(records).encode(), out / "gradescope_scores.csv")
    return out / "grades.csv", out / "gradescope_scores.csv"
