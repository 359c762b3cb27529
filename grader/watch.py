"""``dgm-grade check FILE --watch``: grade again each time the file is saved, printing what changed.

The loop, one judge for the whole session (the checks are loaded once):

1. grade the submission as it is now, with a standby worker (grader/standby.py)
   that was started and imported torch while the student was editing;
2. start the next standby at once: a fresh worker that has never held any
   version of the code, waiting in its sandbox for the next save;
3. print the first run's full report, and for later runs only the checks whose
   verdict changed (with the failure's counterexample) and the new score line;
4. wait for the next save: the file's (or folder's) modification times and
   sizes, polled; a save counts once it has been still for ``SETTLE_S``.

Each run gets its own worker, used for that one version of the code and then
ended. Ctrl-C (or SIGTERM) ends the watch: the running worker and the waiting
one are killed, and nothing is left behind.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from . import report
from .standby import Standby, start_standby

if TYPE_CHECKING:
    from .api import Grading
    from .judge import CheckResult, Grade

POLL_S = 0.1  # how often the file is looked at
SETTLE_S = 0.15  # how long a change must be still before grading (an editor writes a save in pieces)


def fingerprint(path: Path) -> tuple:
    """What changes when ``path`` (a file, or every file of a folder) is saved: names, sizes, mtimes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    stamp = []
    for f in files:
        try:
            st = f.stat()
        except OSError:  # removed while we looked (an editor's atomic save)
            continue
        stamp.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def wait_for_save(path: Path, last: tuple, *, poll_s: float = POLL_S, settle_s: float = SETTLE_S) -> tuple:
    """Block until ``path``'s fingerprint differs from ``last`` and has been still for ``settle_s``."""
    while True:
        now = fingerprint(path)
        if now != last and now:
            time.sleep(settle_s)
            if fingerprint(path) == now:
                return now
            continue
        time.sleep(poll_s)


def verdicts(grade: Grade) -> dict[str, CheckResult]:
    return {r.check.id: r for r in grade.results}


def print_changes(console: Console, before: Grade, after: Grade) -> None:
    """The checks whose verdict changed between two runs (failures with their output), then the score."""
    old = verdicts(before)
    changed = [r for r in after.results if r.check.id not in old or old[r.check.id].passed != r.passed]
    if after.problem and after.problem != before.problem:
        console.print(Panel(escape(after.problem), title="problem", border_style="red", expand=False))
    for r in changed:
        if r.passed:
            console.print(f"  [green]now PASS[/] {escape(r.check.name)} [dim]({r.score:g}/{r.check.points:g})[/]")
        else:
            console.print(f"  [red]now FAIL[/] {escape(r.check.name)} [dim](0/{r.check.points:g})[/]")
            console.print(Panel(escape(r.output or r.brief), title=f"[red]{escape(r.check.name)}[/]",
                                title_align="left", border_style="red", expand=False))
    if not changed:
        console.print("  [dim]no check changed[/]")
    print_score(console, after)


def print_score(console: Console, grade: Grade) -> None:
    colour = "green" if grade.score == grade.max_score else "yellow"
    console.print(f"[bold {colour}]Score: {grade.score:g} / {grade.max_score:g}[/]  "
                  f"[dim]({len(grade.results)} checks in {grade.elapsed:.1f}s, seed {grade.seed})[/]")


def watch(submission: Path, grading: Grading, console: Console, *, standby: Standby | None = None,
          on_run: Callable[[Grade], None] | None = None) -> None:
    """Grade ``submission`` now and after every save, until interrupted (KeyboardInterrupt).

    ``standby``: the first run's worker, if one was started already; ``on_run``: called with
    each run's grade.
    """
    submission = Path(submission)
    standby = standby or start_standby(grading.sandbox)
    last: Grade | None = None
    try:
        while True:
            stamp = fingerprint(submission)
            started = time.monotonic()
            grade, standby = grading.grade(submission, standby=standby), None
            standby = start_standby(grading.sandbox)  # the next run's worker, waiting while the student edits
            took = time.monotonic() - started
            if last is None:
                report.print_report(console, grade)
            else:
                print_changes(console, last, grade)
            console.print(f"[dim]graded in {took:.2f} s; watching {escape(str(submission))} for changes "
                          "(Ctrl-C to stop)[/]")
            if on_run is not None:
                on_run(grade)
            last = grade
            wait_for_save(submission, stamp)
            console.print(f"[bold]saved:[/] {escape(str(submission))}, checking again")
    finally:
        if standby is not None:
            standby.close()
