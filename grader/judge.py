"""Run an assignment's checks against one submission: seeds, timeouts, scores.

For each check, in order:
1. preconditions: the module imported, every function the check needs is
   defined, none of them timed out earlier (else the check fails at once,
   with the reason, and costs nothing else);
2. seeding: torch, numpy, random and hypothesis get one seed derived from
   (grading seed, assignment, check id); hypothesis runs with no example
   database, no deadline, and shrinking capped in time;
3. the body runs; any failure becomes a ``CheckResult`` whose output names
   the function, the property, what went wrong (got / expected), the
   shrunk counterexample and what the student printed.
"""
from __future__ import annotations

import ast
import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.errors import Flaky, HypothesisException

from .assignment import Assignment
from .checks import Check, CheckFailed, Student
from .client import StudentError, WorkerClient, WorkerFault
from .sandbox.base import Sandbox
from .submission import Submission, SubmissionError

MAX_SHRINK_SECONDS = 15
try:  # cap hypothesis' shrinking time (a module constant, 300 s by default)
    import hypothesis.internal.conjecture.engine as _engine

    _engine.MAX_SHRINKING_SECONDS = MAX_SHRINK_SECONDS
except (ImportError, AttributeError):  # pragma: no cover
    pass


def _draw_without_source_constants() -> None:
    """Make what a check draws depend on its seed alone.

    Hypothesis (6.131 and later) mixes literal constants from every module loaded
    from outside site-packages into the data it generates. The examples a check
    drew would then depend on what else the judge process had imported (hidden
    checks and reference/ under `grade`, other assignments in a batch) and on
    whether dgm-grade is a checkout or installed: the same submission and seed
    could score differently under `check`, `grade`, Gradescope and `validate`.
    Hypothesis' own list of edge-case constants (0, 1e-300, inf, ...) is kept.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover
        return
    if hasattr(providers, "_get_local_constants"):
        empty = providers.Constants()
        providers._get_local_constants = lambda: empty
        providers.CONSTANTS_CACHE.cache.clear()


_draw_without_source_constants()
torch.set_printoptions(precision=4, threshold=24, edgeitems=3, linewidth=100)
torch.set_num_threads(1)  # the judge's tensors are small: threads only add overhead and contention


@dataclass
class CheckResult:
    check: Check
    passed: bool
    score: float
    output: str  # empty when passed; else what failed, for the student
    elapsed: float


@dataclass
class Grade:
    """Everything a grading run produced, for results.json and the report."""

    assignment: Assignment
    results: list[CheckResult]
    seed: int
    sandbox: str
    isolation: str
    notes: list[str] = field(default_factory=list)  # about the submission (dropped notebook lines...)
    problem: str = ""  # why the submission could not run at all, if so
    elapsed: float = 0.0

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.check.points for r in self.results)


def check_seed(seed: int, assignment_id: str, check_id: str) -> int:
    """One seed per (grading seed, assignment, check), stable across runs and machines."""
    digest = hashlib.sha256(f"{seed}:{assignment_id}:{check_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def grade(
    assignment: Assignment,
    submission: Submission | SubmissionError,
    *,
    sandbox: Sandbox,
    checks: Iterable[Check] | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    shrink: bool = True,
    stop_at_first_failure: bool = False,
    device: str = "cpu",
    progress: Callable[[CheckResult], None] | None = None,
) -> Grade:
    """Run ``checks`` (default: all of the assignment's) against a submission."""
    started = time.monotonic()
    checks = list(assignment.checks if checks is None else checks)
    seed = assignment.config.seed if seed is None else seed
    limits = assignment.config.limits
    result = Grade(assignment, [], seed, sandbox.name, sandbox.isolation)
    if isinstance(submission, SubmissionError):
        result.problem = str(submission)
        for c in checks:
            result.results.append(CheckResult(c, False, 0.0, f"The submission could not be loaded: {submission}", 0.0))
        result.elapsed = time.monotonic() - started
        return result
    result.notes = list(submission.notes)
    client = WorkerClient(
        sandbox, submission.files, submission.module, import_timeout=limits.import_timeout_s,
        max_frame_bytes=limits.max_frame_mb << 20, device=device,
    )
    try:
        for c in checks:
            r = run_check(
                c, client, seed=check_seed(seed, assignment.id, c.id), examples=c.examples or assignment.config.examples,
                timeout=timeout or c.timeout or limits.timeout_s, shrink=shrink, module=submission.module,
                explain=submission.explain,
            )
            result.results.append(r)
            if progress:
                progress(r)
            if stop_at_first_failure and not r.passed:
                break
        status = client.module()
        if not status.ok:
            result.problem = submission.explain(f"{submission.module} could not be imported: {status.error}")
        elif not any(f.split(".")[0] in status.names for f in assignment.config.functions):
            result.problem = submission.defines_none(assignment.config.functions)
    finally:
        client.close()
    add_root_cause_hints(result.results, student_calls(submission.files.get(f"{submission.module}.py", b"")))
    result.elapsed = time.monotonic() - started
    return result


def run_check(check: Check, client: WorkerClient, *, seed: int, examples: int, timeout: float, shrink: bool,
              module: str, explain: Callable[[str], str] = str) -> CheckResult:
    start = time.monotonic()

    def failed(message: str) -> CheckResult:
        message = explain(message)  # worker tracebacks in terms of the student's file (notebook cells)
        printed = client.take_output().strip()
        if printed:
            message += f"\n\nYour code printed:\n{printed[-1500:]}"
        return CheckResult(check, False, 0.0, message, time.monotonic() - start)

    status = client.module()
    if not status.ok:
        tb = f"\n{status.traceback}" if status.traceback else ""
        return failed(f"{module}.py could not be imported: {status.error}{tb}")
    missing = [n for n in check.needs if n.split(".")[0] not in status.names]
    if missing:
        return failed(f"{', '.join(missing)} is not defined in {module}.py (define it with exactly this name)")
    earlier = [client.timed_out[n] for n in check.needs if n in client.timed_out]
    if earlier:
        return failed(f"skipped: {earlier[0]}")

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    body = seeded(check.run, seed, examples=examples, shrink=shrink)
    try:
        body(Student(client, seed=seed, timeout=timeout))
    except WorkerFault as exc:
        return failed(exc.reason)
    except StudentError as exc:
        tb = f"\n{exc.traceback.rstrip()}" if exc.traceback.strip() else ""
        return failed(f"{exc.function} raised {exc.message}{counterexample(exc)}{tb}")
    except CheckFailed as exc:
        return failed(f"{exc}{counterexample(exc)}")
    except Flaky as flaky:  # a failure that did not reproduce when hypothesis replayed it
        inner = getattr(flaky, "exceptions", [flaky])[0]
        if isinstance(inner, WorkerFault):
            return failed(inner.reason)
        return failed(f"{inner}{counterexample(inner)}\n(the failure did not reproduce on a second run: "
                      "is the function nondeterministic?)")
    except HypothesisException as exc:
        return failed(f"grader error in this check ({type(exc).__name__}); please report it: {exc}")
    except Exception as exc:  # an output the check could not use (wrong type, say)
        return failed(f"the output could not be checked: {type(exc).__name__}: {exc}{counterexample(exc)}")
    client.take_output()
    return CheckResult(check, True, float(check.points), "", time.monotonic() - start)


def seeded(body: Callable, seed: int, *, examples: int, shrink: bool) -> Callable:
    """A check body with hypothesis set up for grading (no-op for a body without @given):
    ``examples`` examples from ``seed``, no database, no deadline, shrinking only if ``shrink``."""
    if getattr(body, "is_hypothesis_test", False):
        phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
        body._hypothesis_internal_use_settings = settings(
            max_examples=examples, deadline=None, database=None, derandomize=False, phases=phases,
            suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
            verbosity=Verbosity.normal,
        )
        body._hypothesis_internal_use_seed = seed
    return body


def student_calls(source: bytes) -> dict[str, set[str]]:
    """Which top-level names each top-level function or class of the student's module refers to."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    calls: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            calls[node.name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - {node.name}
    return calls


def add_root_cause_hints(results: list[CheckResult], calls: dict[str, set[str]]) -> None:
    """Point a failed check at the lowest-level function it depends on that fails its own checks.

    ``negative_elbo_bound`` calling a broken ``kl_normal`` fails too; the
    student should fix ``kl_normal`` first.
    """
    failing = {r.check.function for r in results if not r.passed}

    def broken_callees(fn: str, seen: set[str]) -> list[str]:
        found = []
        for callee in sorted(calls.get(fn, set()) - seen):
            deeper = broken_callees(callee, seen | {callee})
            found += deeper or ([callee] if callee in failing else [])
        return found

    for r in results:
        if not r.passed:
            roots = sorted(set(broken_callees(r.check.function.split(".")[0], {r.check.function})))
            if roots:
                names = ", ".join(roots)
                r.output += (f"\n\nHint: {r.check.function} calls {names}, which also fails its own checks; "
                             f"fix {names} first.")


def counterexample(exc: BaseException) -> str:
    """The shrunk example hypothesis attached to ``exc``, without the ``student`` argument.

    Arguments come from the "Falsifying example" note; values drawn inside the
    check with ``st.data()`` come as separate "Draw N:" notes.
    """
    lines: list[str] = []
    for note in getattr(exc, "__notes__", []):
        if note.startswith(("Falsifying example", "Failing test case")):
            lines += [ln.strip().rstrip(",") for ln in note.splitlines()[1:]
                      if ln.strip() not in (")", "student=student,") and not ln.strip().startswith("data=data(")]
        elif note.startswith("Draw "):
            lines.append(note.strip())
    return "\nCounterexample (smallest found):\n  " + "\n  ".join(lines) if lines else ""
