"""The readable report printed by `dgm-grade check` and `dgm-grade grade` (rich).

A failure about a whole function (not implemented yet, not defined, a module
that does not import: ``CheckResult.brief``) is one line for all the checks
of that function it fails, not a panel per check. Printed to a file, a pipe
or a CI log, nothing is wrapped at the terminal's width (``make_console``).
"""
from __future__ import annotations

import html
import sys
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:  # the judge imports torch; the CLI imports this module before starting the worker
    from .judge import CheckResult, Grade

UNWRAPPED_WIDTH = 100_000  # "columns" of a console that is not a terminal: long lines stay whole


def make_console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """A console for the report: the terminal's width on a terminal; on a file, a pipe or a CI log
    lines are never wrapped, and panels and tables are as wide as what they hold.

    (Whether the stream is a terminal is asked of the stream itself: rich would take
    FORCE_COLOR, which CI sets for coloured logs, as a terminal of 80 columns.)
    """
    stream = file or (sys.stderr if stderr else sys.stdout)
    console = Console(file=file, stderr=stderr, highlight=False)
    if not (stream is not None and hasattr(stream, "isatty") and stream.isatty()):
        console.soft_wrap = True
        console.width = UNWRAPPED_WIDTH
    return console


@dataclass
class Row:
    """One line of the score table: one check, or a function's checks that fail with the same brief."""

    label: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def points(self) -> float:
        return sum(r.check.points for r in self.results)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def rows(results: list[CheckResult]) -> list[Row]:
    """The score table's rows, in check order; failures sharing a function and a brief become one row."""
    table: list[Row] = []
    groups: dict[tuple[str, str], Row] = {}
    for r in results:
        key = brief_key(r)
        if key is None:
            table.append(Row(r.check.name, [r]))
            continue
        if key not in groups:
            groups[key] = Row(f"{r.check.function}: {r.brief}")
            table.append(groups[key])
        groups[key].results.append(r)
    for row in groups.values():
        if len(row.results) > 1:
            row.label += f" ({len(row.results)} checks)"
    return table


def brief_key(r: CheckResult) -> tuple[str, str] | None:
    """(function, brief) of a failure about the whole function, else None."""
    return (r.check.function, r.brief) if not r.passed and r.brief else None


class ProgressLines:
    """``progress`` for the judge: a line per finished check, but only the first of a
    function's checks that fail with the same brief ("kl_normal: not implemented yet")."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown: set[tuple[str, str]] = set()

    def __call__(self, r: CheckResult) -> None:
        key = brief_key(r)
        if key is None:
            progress_line(self.console, r)
        elif key not in self.shown:
            self.shown.add(key)
            self.console.print(f"  [red]FAIL[/] {escape(r.check.function)}: {escape(r.brief)}")


def progress_line(console: Console, r: CheckResult) -> None:
    mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
    console.print(f"  {mark} {escape(r.check.name)} [dim]({r.score:g}/{r.check.points:g}, {r.elapsed:.1f}s)[/]")


def print_report(console: Console, grade: Grade, *, show_passed: bool = False) -> None:
    cfg = grade.assignment.config
    if grade.problem:
        console.print(Panel(escape(grade.problem), title="problem", border_style="red", expand=False))
    for note in grade.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    table = Table(title=escape(f"{cfg.id}: {cfg.title}"), show_lines=False)
    table.add_column("check")
    table.add_column("points", justify="right")
    table.add_column("", justify="center")
    for row in rows(grade.results):
        table.add_row(escape(row.label), f"{row.score:g}/{row.points:g}", "[green]✓[/]" if row.passed else "[red]✗[/]")
    console.print(table)
    for r in grade.results:
        if not r.passed and brief_key(r) is None:
            console.print(Panel(escape(r.output), title=f"[red]{escape(r.check.name)}[/]", title_align="left",
                                border_style="red", expand=False))
    colour = "green" if grade.score == grade.max_score else "yellow"
    console.print(f"[bold {colour}]{escape(score_line(grade))}[/]  "
                  f"[dim]({len(grade.results)} checks in {grade.elapsed:.1f}s, seed {grade.seed})[/]")
    console.print(f"[dim]{escape(grade.isolation)}[/]")


def score_line(grade: Grade) -> str:
    """"Score: 35 / 35", and when hidden checks did not run (`check`), what the score covers:
    "Score: 35 / 35 public points; hidden checks grade the remaining 21 points after submission"."""
    line = f"Score: {grade.score:g} / {grade.max_score:g}"
    if grade.hidden_points:
        line += (f" public points; hidden checks grade the remaining {grade.hidden_points:g} point"
                 f"{'s' * (grade.hidden_points != 1)} after submission")
    return line


# ---------------------------------------------------------------- HTML, for check() in a notebook

HTML_STYLE = ("<style>.dgm-report td,.dgm-report th{text-align:left;padding:2px 8px;vertical-align:top}"
              ".dgm-report pre{white-space:pre-wrap;margin:4px 0 8px 0}.dgm-pass{color:#080}.dgm-fail{color:#b00}"
              "</style>")


def html_report(grade: Grade, *, warnings: list[str] = ()) -> str:
    """The report as one self-contained HTML fragment: warnings and notes, a row per check (a function's
    checks failing the same way share one), each other failure expanded below its row (the property,
    the counterexample, expected against got), then the score line and the isolation."""
    cfg = grade.assignment.config
    parts = [HTML_STYLE, '<div class="dgm-report">', f"<h4>{html.escape(cfg.id)}: {html.escape(cfg.title)}</h4>"]
    parts += [f'<p class="dgm-fail"><b>warning:</b> {html.escape(w)}</p>' for w in warnings]
    if grade.problem:
        parts.append(f'<p class="dgm-fail"><b>problem:</b> {html.escape(grade.problem)}</p>')
    parts += [f"<p><b>note:</b> {html.escape(n)}</p>" for n in grade.notes]
    parts.append("<table><tr><th></th><th>check</th><th>points</th></tr>")
    for row in rows(grade.results):
        mark = '<span class="dgm-pass">&#10003;</span>' if row.passed else '<span class="dgm-fail">&#10007;</span>'
        parts.append(f"<tr><td>{mark}</td><td>{html.escape(row.label)}</td><td>{row.score:g}/{row.points:g}</td></tr>")
        for r in row.results:
            if not r.passed and brief_key(r) is None:
                parts.append(f'<tr><td></td><td colspan="2"><details open><summary>why it failed</summary>'
                             f"<pre>{html.escape(r.output)}</pre></details></td></tr>")
    parts.append("</table>")
    colour = "dgm-pass" if grade.score == grade.max_score else "dgm-fail"
    parts.append(f'<p class="{colour}"><b>{html.escape(score_line(grade))}</b> '
                 f"({len(grade.results)} checks in {grade.elapsed:.1f}s, seed {grade.seed})</p>")
    parts.append(f"<p><small>{html.escape(grade.isolation)}</small></p></div>")
    return "\n".join(parts)
