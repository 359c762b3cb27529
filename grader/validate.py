"""`dgm-grade validate ID`: do an assignment's checks grade what they should?

The flow, for one assignment:

1. reference: ``reference/<module>.py`` graded with every check (public and
   hidden) under ``seeds`` different grading seeds (the assignment's seed,
   then the next ones). Each run must score full marks; a check that fails
   under any seed is reported as flaky, with the seeds.
2. template: the blank handout (``grader.handout.template_source`` of the
   reference) graded with every check; it must score 0.
3. mutants: ``grader.mutate.mutants`` of the reference, each graded at the
   assignment's seed with ``stop_at_first_failure=True`` and ``shrink=False``,
   the checks of the mutated function first. A mutant is killed when any check
   fails (a mutant that cannot be imported or that times out included).
   ``quick`` grades a fixed sample of the mutants not listed as equivalent:
   sorted by id within each operator, taken round-robin across operators, so
   every operator is represented and the sample only changes when the
   reference (or the list) does.
4. alternatives: ``assignments/<id>/alternatives/*.py``, correct modules
   written from the handout alone in styles unlike the reference (log-space
   forms, ``torch.distributions``, loops, einsum, float64 inside,
   renormalising defensively), each graded with every check under the first
   ``ALTERNATIVE_SEEDS`` reference seeds: each must score full marks.
5. degenerate answers (``grader.degenerate``): generated modules whose every
   function returns zeros, ones or an echo of an input (each must score 0),
   and the hand-written special-case answers of ``assignments/<id>/degenerate/``
   (the checks of the functions each replaces must earn 0 points).
6. survivors are compared with ``assignments/<id>/equivalent_mutants.toml``::

       [[equivalent]]
       id = "e9ca293ea61c"
       function = "sample_gaussian"
       description = "line 88: `torch.broadcast_shapes(a, b)` -> `torch.broadcast_shapes(b, a)`"
       reason = "broadcasting is symmetric"

Validation passes when the reference and every alternative score full marks
under every seed they run, the template and every degenerate answer score 0
(on the functions they replace), no survivor is missing from that list, and at
least ``KILL_TARGET`` of the non-equivalent mutants are killed.

Every grade runs in the process sandbox, so each starts its own worker
subprocess; with ``workers > 1`` the grades are spread over a process pool.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import zip_longest
from pathlib import Path
from typing import Callable, Iterable, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import degenerate
from .assignment import Assignment, load_assignment
from .checks import Check
from .handout import template_source
from .judge import required_checks
from .mutate import Mutant, mutants

KILL_TARGET = 0.95  # share of non-equivalent mutants the checks must kill
QUICK_MUTANTS = 12  # mutants graded by --quick (what CI runs for every assignment)
QUICK_SEEDS = 2  # reference seeds graded by --quick
FULL_SEEDS = 50
ALTERNATIVE_SEEDS = 10  # each alternative correct implementation runs under the first seeds of the reference's
ALTERNATIVES = "alternatives"  # assignments/<id>/alternatives/*.py
EQUIVALENT_FILE = "equivalent_mutants.toml"
DOCS_TABLE = Path(__file__).resolve().parents[1] / "docs" / "assignments.md"
TABLE_START, TABLE_END = "<!-- validate-table:start -->", "<!-- validate-table:end -->"

Progress = Callable[[int, int, str], None]  # (done, total, what just finished)


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class Equivalent:
    """One entry of equivalent_mutants.toml: a mutant no check can kill, and why."""

    id: str
    function: str
    description: str
    reason: str


@dataclass(frozen=True)
class MutantOutcome:
    mutant: Mutant
    status: Literal["killed", "survived", "error"]  # error: the grader itself failed on this mutant
    detail: str  # killed: the first failing check and the first line of its output; error: the exception
    elapsed: float


@dataclass(frozen=True)
class DegenerateOutcome:
    """A degenerate answer and the points it earned on the functions it replaces (must be 0)."""

    label: str  # "zeros", "echo", or "degenerate/<file stem>"
    functions: tuple[str, ...]  # what it replaces ("every function" for the generated ones)
    points: float
    passed: tuple[str, ...]  # names of the checks that gave it points


@dataclass
class ValidationReport:
    """Everything `validate` measured for one assignment."""

    assignment_id: str
    functions: int  # student functions in the config
    checks: int  # public + hidden
    points: float
    quick: bool
    seeds: list[int]  # grading seeds the reference ran under
    flaky: dict[str, list[int]]  # check name -> seeds under which the reference failed it
    flaky_output: dict[str, str]  # check name -> its first failure's output
    template_score: float
    template_passed: list[str]  # checks the blank template passed (must be none)
    mutants_total: int  # mutants of the reference (all of them, even when quick samples a few)
    outcomes: list[MutantOutcome]  # the mutants graded
    equivalents: list[Equivalent]  # the committed list
    alternatives: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # file -> failed check -> seeds
    alternative_seeds: list[int] = field(default_factory=list)
    degenerates: list[DegenerateOutcome] = field(default_factory=list)
    wall_time: float = 0.0
    problems: list[str] = field(default_factory=list)  # reference/template could not be graded, say

    @property
    def killed(self) -> list[MutantOutcome]:
        return [o for o in self.outcomes if o.status == "killed"]

    @property
    def survivors(self) -> list[MutantOutcome]:
        return [o for o in self.outcomes if o.status != "killed"]

    @property
    def listed_survivors(self) -> list[MutantOutcome]:
        ids = {e.id for e in self.equivalents}
        return [o for o in self.survivors if o.status == "survived" and o.mutant.id in ids]

    @property
    def unlisted_survivors(self) -> list[MutantOutcome]:
        ids = {e.id for e in self.equivalents}
        return [o for o in self.survivors if o.status == "error" or o.mutant.id not in ids]

    @property
    def listed_but_killed(self) -> list[MutantOutcome]:
        """Mutants listed as equivalent that a check kills: the list is out of date."""
        ids = {e.id for e in self.equivalents}
        return [o for o in self.killed if o.mutant.id in ids]

    @property
    def non_equivalent(self) -> int:
        return len(self.outcomes) - len(self.listed_survivors)

    @property
    def kill_rate(self) -> float:
        return len(self.killed) / self.non_equivalent if self.non_equivalent else 1.0

    @property
    def reference_ok(self) -> bool:
        return not self.flaky and not self.problems

    @property
    def alternatives_ok(self) -> bool:
        return not any(self.alternatives.values())

    @property
    def degenerates_ok(self) -> bool:
        return all(d.points == 0 for d in self.degenerates)

    @property
    def passed(self) -> bool:
        return (self.reference_ok and self.template_score == 0 and not self.template_passed
                and self.alternatives_ok and self.degenerates_ok
                and not self.unlisted_survivors and self.kill_rate >= KILL_TARGET)

    def operator_counts(self) -> dict[str, tuple[int, int]]:
        """operator -> (killed, graded)."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for o in self.outcomes:
            counts[o.mutant.operator][1] += 1
            counts[o.mutant.operator][0] += o.status == "killed"
        return {k: (v[0], v[1]) for k, v in sorted(counts.items())}

    def as_markdown_row(self) -> str:
        """One row of ``TABLE_HEADER``."""
        sampled = f" (quick sample of {self.mutants_total})" if self.quick else ""
        full_alternatives = sum(not failed for failed in self.alternatives.values())
        zero_degenerates = sum(d.points == 0 for d in self.degenerates)
        cells = [
            f"`{self.assignment_id}`", str(self.functions), str(self.checks), f"{self.points:g}",
            f"{len(self.killed)}/{len(self.outcomes)}{sampled}", str(len(self.listed_survivors)),
            f"{len(self.seeds) - len({s for v in self.flaky.values() for s in v})}/{len(self.seeds)}",
            f"{full_alternatives}/{len(self.alternatives)} ({len(self.alternative_seeds)} seeds)",
            f"{zero_degenerates}/{len(self.degenerates)}",
            _minutes(self.wall_time),
        ]
        return "| " + " | ".join(cells) + " |"


TABLE_HEADER = ("| assignment | functions | checks | points | mutants killed/total | equivalent | "
                "reference full marks (seeds) | alternatives full marks | degenerate answers at 0 | wall time |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


# ---------------------------------------------------------------------- the run


def validate(
    assignment_id: str,
    *,
    quick: bool = False,
    seeds: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    sample: int = QUICK_MUTANTS,
    alternatives: bool = True,
    hand_written: bool = True,
    template: bool = True,
) -> ValidationReport:
    """Grade the reference (``seeds`` seeds), the blank template and the mutants of one assignment.

    quick: grade a fixed sample of ``sample`` mutants (default seeds: 2, else 50);
    alternatives, hand_written, template: also grade ``alternatives/*.py``, the hand-written
        special-case answers of ``degenerate/`` and the blank template (off only for a cheaper
        smoke run: CI grades every blank template in tests/test_assignments.py);
    workers: grades run at once (each in its own worker subprocess);
    progress: called after every grade with (done, total, what finished).
    """
    started = time.monotonic()
    assignment = load_assignment(assignment_id)
    n_seeds = seeds if seeds is not None else QUICK_SEEDS if quick else FULL_SEEDS
    if n_seeds < 1 or workers < 1:
        raise ValueError("seeds and workers must be at least 1")
    reference = reference_source(assignment)
    all_mutants = mutants(reference)
    equivalents = load_equivalents(assignment.path / EQUIVALENT_FILE)
    listed = {e.id for e in equivalents}
    graded = quick_sample([m for m in all_mutants if m.id not in listed], sample) if quick else all_mutants
    seed_list = [assignment.config.seed + i for i in range(n_seeds)]
    all_checks = [c.id for c in assignment.checks]

    alternative_seeds = seed_list[:ALTERNATIVE_SEEDS]
    degenerates = degenerate_sources(assignment, reference, hand_written=hand_written)
    alternatives = alternative_sources(assignment) if alternatives else {}

    jobs: list[Job] = [Job(assignment_id, f"reference seed {s}", reference, tuple(all_checks), s)
                       for s in seed_list]
    if template:
        jobs.append(Job(assignment_id, "blank template", template_source(reference), tuple(all_checks),
                        assignment.config.seed))
    jobs += [Job(assignment_id, f"alternative {name} seed {s}", source, tuple(all_checks), s)
             for name, source in alternatives.items() for s in alternative_seeds]
    jobs += [Job(assignment_id, f"degenerate {label}", source, degenerate_checks(assignment, functions),
                 assignment.config.seed, shrink=False) for label, (functions, source) in degenerates.items()]
    jobs += [Job(assignment_id, f"mutant {m.id}", m.source, tuple(c.id for c in checks_for(assignment, m.function)),
                 assignment.config.seed, shrink=False, stop_at_first_failure=True) for m in graded]
    results = dict(zip((j.label for j in jobs), _run_all(jobs, workers, progress)))

    report = ValidationReport(
        assignment_id=assignment_id, functions=len(assignment.config.functions), checks=len(assignment.checks),
        points=assignment.max_score, quick=quick, seeds=seed_list, flaky={}, flaky_output={},
        template_score=0.0, template_passed=[], mutants_total=len(all_mutants), outcomes=[],
        equivalents=equivalents, alternative_seeds=alternative_seeds,
    )
    for s in seed_list:
        r = results[f"reference seed {s}"]
        if r.error:
            report.problems.append(f"reference, seed {s}: {r.error}")
        for name, output in r.failed:
            report.flaky.setdefault(name, []).append(s)
            report.flaky_output.setdefault(name, output)
    t = results.get("blank template")
    if t is not None and t.error:
        report.problems.append(f"blank template: {t.error}")
    if t is not None:
        report.template_score, report.template_passed = t.score, list(t.passed)
    for name in alternatives:
        failed = report.alternatives.setdefault(name, {})
        for s in alternative_seeds:
            r = results[f"alternative {name} seed {s}"]
            for check_name in [f"grader error: {r.error}"] if r.error else [n for n, _ in r.failed]:
                failed.setdefault(check_name, []).append(s)
    for label, (functions, _) in degenerates.items():
        r = results[f"degenerate {label}"]
        owners = {f.split(".")[0] for f in functions}
        function_of = {c.name: c.function.split(".")[0] for c in assignment.checks}
        earned = [(c, p) for c, p in r.points.items() if not functions or function_of[c] in owners]
        report.degenerates.append(DegenerateOutcome(label, functions, sum(p for _, p in earned),
                                                    tuple(c for c, _ in earned)))
        if r.error:
            report.problems.append(f"degenerate {label}: {r.error}")
    for m in graded:
        r = results[f"mutant {m.id}"]
        if r.error:
            report.outcomes.append(MutantOutcome(m, "error", r.error, r.elapsed))
        elif r.failed:
            name, output = r.failed[0]
            first_line = next((ln for ln in output.splitlines() if ln.strip()), "")
            report.outcomes.append(MutantOutcome(m, "killed", f"{name}: {first_line[:160]}", r.elapsed))
        else:
            report.outcomes.append(MutantOutcome(m, "survived", "", r.elapsed))
    report.wall_time = time.monotonic() - started
    return report


def reference_source(assignment: Assignment) -> str:
    import reference

    return (Path(reference.__file__).parent / f"{assignment.config.module}.py").read_text()


def alternative_sources(assignment: Assignment) -> dict[str, str]:
    """``alternatives/<name>.py`` of an assignment: name -> source."""
    folder = assignment.path / ALTERNATIVES
    return {p.stem: p.read_text() for p in sorted(folder.glob("*.py"))} if folder.is_dir() else {}


def degenerate_sources(assignment: Assignment, reference: str, *,
                       hand_written: bool = True) -> dict[str, tuple[tuple[str, ...], str]]:
    """label -> (the functions it replaces, () for all of them; module source), generated and hand-written."""
    out: dict[str, tuple[tuple[str, ...], str]] = {
        kind: ((), degenerate.generated(reference, list(assignment.config.functions), kind))
        for kind in degenerate.KINDS}
    for name, fragment in degenerate.hand_written(assignment.path).items() if hand_written else ():
        out[f"{degenerate.FOLDER}/{name}"] = (tuple(degenerate.defined_names(fragment)),
                                              degenerate.with_fragment(reference, fragment))
    return out


def degenerate_checks(assignment: Assignment, functions: tuple[str, ...]) -> tuple[str, ...]:
    """Ids of the checks a degenerate answer is graded with: every check for a generated one
    (``functions`` empty), else those of the functions it replaces and the pins they require
    (the other functions are the reference's and earn their points anyway)."""
    owners = {f.split(".")[0] for f in functions}
    own = {c.id for c in assignment.checks if not owners or c.function.split(".")[0] in owners}
    pins = required_checks(assignment.checks)  # transitive already
    ids = own.union(*(pins[i] for i in own))
    return tuple(c.id for c in assignment.checks if c.id in ids)


def checks_for(assignment: Assignment, function: str) -> list[Check]:
    """Every check, those about ``function`` (or its class) first, then those that use it, then the rest."""
    owner = function.split(".")[0]

    def rank(c: Check) -> int:
        if c.function in (function, owner) or function.startswith(c.function + "."):
            return 0
        return 1 if any(u in (function, owner) for u in c.uses) else 2

    return sorted(assignment.checks, key=rank)  # stable: file order within a rank


def quick_sample(pool: list[Mutant], n: int) -> list[Mutant]:
    """``n`` mutants: each operator's mutants sorted by id, dealt round-robin across operators."""
    by_operator: dict[str, list[Mutant]] = defaultdict(list)
    for m in pool:
        by_operator[m.operator].append(m)
    columns = [sorted(ms, key=lambda m: m.id) for _, ms in sorted(by_operator.items())]
    dealt = [m for row in zip_longest(*columns) for m in row if m is not None]
    return dealt[:n]


def load_equivalents(path: Path) -> list[Equivalent]:
    """The ``[[equivalent]]`` entries of ``path`` (none when the file is absent)."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    entries = data.get("equivalent", [])
    out = []
    for i, e in enumerate(entries):
        missing = [k for k in ("id", "function", "description", "reason") if not str(e.get(k, "")).strip()]
        if missing:
            raise ValueError(f"{path}: [[equivalent]] entry {i + 1} lacks {', '.join(missing)}")
        out.append(Equivalent(str(e["id"]), str(e["function"]), str(e["description"]), str(e["reason"])))
    return out


# ---------------------------------------------------------------------- grading jobs


@dataclass(frozen=True)
class Job:
    """One grade: picklable, so it can cross into a pool process."""

    assignment_id: str
    label: str
    source: str
    check_ids: tuple[str, ...]  # in the order to run
    seed: int
    shrink: bool = True  # shrink counterexamples (off where only pass/fail matters)
    stop_at_first_failure: bool = False  # mutants: one failing check kills


@dataclass(frozen=True)
class JobResult:
    score: float
    passed: tuple[str, ...]  # check names
    failed: tuple[tuple[str, str], ...]  # (check name, output)
    elapsed: float
    error: str = ""  # the grader raised: validation cannot trust this grade
    points: dict[str, float] = field(default_factory=dict)  # check name -> points earned, where > 0


def run_job(job: Job) -> JobResult:
    """Grade ``job.source`` in the process sandbox."""
    from .api import make_sandbox
    from .judge import grade
    from .submission import submission_from_bytes

    start = time.monotonic()
    try:
        assignment = _assignment(job.assignment_id)
        by_id = {c.id: c for c in assignment.checks}
        sub = submission_from_bytes(job.source.encode(), assignment.config.module)
        g = grade(assignment, sub, sandbox=make_sandbox(assignment, kind="process"),
                  checks=[by_id[i] for i in job.check_ids], seed=job.seed, shrink=job.shrink,
                  stop_at_first_failure=job.stop_at_first_failure)
    except Exception as exc:  # a grader bug, not a verdict on the source
        return JobResult(0.0, (), (), time.monotonic() - start, f"{type(exc).__name__}: {exc}")
    return JobResult(
        g.score, tuple(r.check.name for r in g.results if r.passed),
        tuple((r.check.name, r.output) for r in g.results if not r.passed), time.monotonic() - start,
        points={r.check.name: r.score for r in g.results if r.score > 0},
    )


@lru_cache(maxsize=None)
def _assignment(assignment_id: str) -> Assignment:
    return load_assignment(assignment_id)


def _run_all(jobs: list[Job], workers: int, progress: Progress | None) -> list[JobResult]:
    """Results in the order of ``jobs``; ``workers`` grades at a time."""
    results: list[JobResult | None] = [None] * len(jobs)
    if workers == 1:
        for i, job in enumerate(jobs):
            results[i] = run_job(job)
            if progress:
                progress(i + 1, len(jobs), job.label)
    else:
        context = multiprocessing.get_context("spawn")  # no fork after torch started its threads
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_pool, initargs=(threads,)) as pool:
            futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
            for done, future in enumerate(as_completed(futures), 1):
                i = futures[future]
                results[i] = future.result()
                if progress:
                    progress(done, len(jobs), jobs[i].label)
    return [r for r in results if r is not None]


def _init_pool(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


# ---------------------------------------------------------------------- reporting


def print_report(console, report: ValidationReport) -> None:  # console: rich.console.Console
    """The readable summary `dgm-grade validate` prints."""
    from rich.markup import escape
    from rich.table import Table

    ok, bad = "[green]✓[/]", "[red]✗[/]"
    mode = f"quick: {len(report.outcomes)} of {report.mutants_total} mutants" if report.quick else "all mutants"
    console.print(f"[bold]validate {report.assignment_id}[/] [dim]({mode}, {len(report.seeds)} seeds, "
                  f"{_minutes(report.wall_time)})[/]")
    for p in report.problems:
        console.print(f"  {bad} grader error: {escape(p)}")
    flaky_seeds = {s for v in report.flaky.values() for s in v}
    console.print(f"  {ok if report.reference_ok else bad} reference: full marks under "
                  f"{len(report.seeds) - len(flaky_seeds)}/{len(report.seeds)} seeds")
    for name, seeds in report.flaky.items():
        first = report.flaky_output[name].strip().splitlines()[:1]
        seeds_text = ", ".join(map(str, seeds))
        console.print(f"      flaky: {escape(name)} (seeds {seeds_text}): {escape(first[0] if first else '')}")
    template_ok = report.template_score == 0 and not report.template_passed
    console.print(f"  {ok if template_ok else bad} blank template: {report.template_score:g}/{report.points:g}")
    for name in report.template_passed:
        console.print(f"      passes: {escape(name)}")
    if report.alternatives:
        full = sum(not failed for failed in report.alternatives.values())
        console.print(f"  {ok if report.alternatives_ok else bad} alternative correct implementations: {full}/"
                      f"{len(report.alternatives)} full marks under {len(report.alternative_seeds)} seeds")
    for name, failed in report.alternatives.items():
        for check_name, seeds in failed.items():
            console.print(f"      {escape(name)} fails {escape(check_name)} (seeds {', '.join(map(str, seeds))})")
    if report.degenerates:
        zero = sum(d.points == 0 for d in report.degenerates)
        console.print(f"  {ok if report.degenerates_ok else bad} degenerate answers: {zero}/{len(report.degenerates)} "
                      "earn nothing")
    for d in report.degenerates:
        if d.points:
            what = ", ".join(d.functions) or "every function"
            console.print(f"      {escape(d.label)} ({escape(what)}) earns {d.points:g}: {escape('; '.join(d.passed))}")
    rate_ok = report.kill_rate >= KILL_TARGET
    console.print(f"  {ok if rate_ok else bad} mutants: {len(report.killed)}/{len(report.outcomes)} killed, "
                  f"{len(report.listed_survivors)} equivalent (listed), {report.kill_rate:.1%} of the non-equivalent "
                  f"(target {KILL_TARGET:.0%})")
    table = Table("operator", "killed", "graded", box=None, padding=(0, 2))
    for op, (k, n) in report.operator_counts().items():
        table.add_row(op, str(k), str(n))
    console.print(table)
    for o in report.unlisted_survivors:
        what = "grader error" if o.status == "error" else "survived"
        console.print(f"  {bad} {what}: [bold]{o.mutant.id}[/] {escape(o.mutant.function)}: "
                      f"{escape(o.mutant.description)}" + (f"\n      {escape(o.detail)}" if o.detail else ""))
    for o in report.listed_survivors:
        console.print(f"  [dim]equivalent: {o.mutant.id} {escape(o.mutant.function)}: "
                      f"{escape(o.mutant.description)}[/]")
    for o in report.listed_but_killed:
        console.print(f"  [yellow]listed as equivalent but killed (remove it from {EQUIVALENT_FILE}):[/] "
                      f"{o.mutant.id} by {escape(o.detail)}")
    graded_ids = {o.mutant.id for o in report.outcomes}
    if not report.quick:
        stale = [e for e in report.equivalents if e.id not in graded_ids]
        for e in stale:
            console.print(f"  [yellow]listed in {EQUIVALENT_FILE} but no such mutant (stale):[/] {e.id} "
                          f"{escape(e.description)}")
    verdict = "[bold green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    console.print(f"  {verdict}")


def survivors_toml(report: ValidationReport) -> str:
    """``[[equivalent]]`` stubs for the unlisted survivors (reason to fill in), for a TA to review."""
    out = []
    for o in report.unlisted_survivors:
        out.append(f'[[equivalent]]\nid = "{o.mutant.id}"\nfunction = "{o.mutant.function}"\n'
                   f"description = {_toml_string(o.mutant.description)}\nreason = \"TODO\"\n")
    return "\n".join(out)


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_docs_table(reports: Iterable[ValidationReport], path: Path = DOCS_TABLE) -> Path:
    """Refresh the per-assignment rows of the validation table in ``path`` (other rows are kept).

    The table lives between ``TABLE_START`` and ``TABLE_END``; the file (or
    the section) is created when missing.
    """
    rows: dict[str, str] = {}
    text = path.read_text() if path.is_file() else ""
    if TABLE_START in text and TABLE_END in text:
        head, rest = text.split(TABLE_START, 1)
        body, tail = rest.split(TABLE_END, 1)
        for line in body.splitlines():
            m = re.match(r"\|\s*`([^`]+)`", line)
            if m:
                rows[m.group(1)] = line
    else:
        head = text or ("# Assignments\n\nPer-assignment validation, refreshed by the full run:\n\n"
                        "    dgm-grade validate all --workers 2 --docs\n\n"
                        "(every mutant of the reference, 50 reference seeds; see grader/validate.py).\n\n")
        if text:
            head = text.rstrip() + "\n\n## Validation\n\n"
        tail = "\n"
    for r in reports:
        rows[r.assignment_id] = r.as_markdown_row()
    table = "\n".join([TABLE_HEADER, *(rows[k] for k in sorted(rows))])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}")
    return path

