"""The progress a TA watches during a batch: a bar with done / failed / running, the ETA, and the
slowest submission in flight (rich; one line a student at the end of each when not a terminal)."""
from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .records import StudentRecord


class BatchProgress:
    """``run.Progress`` on a rich console; use as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            TextColumn("[dim]{task.fields[slowest]}"), console=console, transient=True)
        self.running: dict[str, float] = {}
        self.done = self.failed = 0
        self.task = None

    def __enter__(self) -> "BatchProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def begin(self, total: int, skipped: int) -> None:
        if skipped:
            self.console.print(f"{skipped} of {total} students unchanged since their last grade: not graded again "
                               "(--regrade grades them anyway)")
        self.task = self.bar.add_task("batch", total=total - skipped, counts="", slowest="")
        self._refresh()

    def started(self, student: str) -> None:
        self.running[student] = time.monotonic()
        self._refresh()

    def finished(self, record: StudentRecord) -> None:
        self.running.pop(record.student, None)
        self.done += 1
        self.failed += record.status != "graded"
        what = f"{record.score:g}/{record.max_score:g}" if record.status == "graded" else \
            f"[yellow]{escape(record.status)}[/]: {escape(record.reason[:80])}"
        self.console.print(f"{escape(record.student)}: {what} ({record.elapsed:.0f} s)")
        self.bar.advance(self.task)
        self._refresh()

    def _refresh(self) -> None:
        if self.task is None:
            return
        now = time.monotonic()
        slowest = max(self.running.items(), key=lambda kv: now - kv[1], default=None)
        self.bar.update(self.task, counts=f"done {self.done}, failed {self.failed}, running {len(self.running)}",
                        slowest=f"slowest: {escape(slowest[0])} {now - slowest[1]:.0f} s" if slowest else "")
