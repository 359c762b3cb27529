"""The readable report printed by `dgm-grade check` and `dgm-grade grade` (rich)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from .judge import CheckResult, Grade


def progress_line(console: Console, r: CheckResult) -> None:
    mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
    console.print(f"  {mark} {escape(r.check.name)} [dim]({r.score:g}/{r.check.points:g}, {r.elapsed:.1f}s)[/]")


def print_report(console: Console, grade: Grade, *, show_passed: bool = False) -> None:
    cfg = grade.assignment.config
    if grade.problem:
        console.print(Panel(escape(grade.problem), title="problem", border_style="red"))
    for note in grade.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    table = Table(title=escape(f"{cfg.id}: {cfg.title}"), show_lines=False)
    table.add_column("check")
    table.add_column("points", justify="right")
    table.add_column("", justify="center")
    for r in grade.results:
        table.add_row(escape(r.check.name), f"{r.score:g}/{r.check.points:g}", "[green]✓[/]" if r.passed else "[red]✗[/]")
    console.print(table)
    for r in grade.results:
        if not r.passed:
            console.print(Panel(escape(r.output), title=f"[red]{escape(r.check.name)}[/]", title_align="left",
                                border_style="red"))
    colour = "green" if grade.score == grade.max_score else "yellow"
    console.print(f"[bold {colour}]Score: {grade.score:g} / {grade.max_score:g}[/]  "
                  f"[dim]({len(grade.results)} checks in {grade.elapsed:.1f}s, seed {grade.seed}, {grade.sandbox} sandbox)[/]")
    console.print(f"[dim]{escape(grade.isolation)}[/]")
