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
   shrunk counterexample and what the student printed in that example
   (the wording and the hints are grader/feedback.py's).

SIGTERM or SIGINT while grading (``stop_on_signals``, which the CLI uses)
stops at once: the worker is killed, the check that was running and every
later one fail with the reason, and the checks done so far keep their
scores, so results.json can still be written.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import os
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.errors import Flaky, HypothesisException

from .assignment import Assignment
from .checks import Check, CheckFailed, Student
from .client import SandboxLost, StudentError, WorkerClient, WorkerFault
from .feedback import (Frame, StudentModule, add_root_cause_hints, counterexample, is_not_implemented,
                       not_implemented, raising_frame, unusable_output)
from .sandbox.base import Sandbox, SandboxUnavailable
from .standby import Standby
from .stopping import STOP, Interrupted, StopSignal, stop_on_signals  # noqa: F401 (re-exported)
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
    gated_by: tuple[str, ...] = ()  # the property held, but these required checks failed (so it scores 0)
    brief: str = ""  # one line when the failure is about the whole function ("not implemented yet"): the report
    #                  shows a function's checks that fail with the same brief as one line
    raised_in: Frame | None = None  # where in the student's code the exception it failed on was raised
    kind: str = ""  # why it failed (KINDS), set where the judge saw it fail; "" when it passed


KINDS = {  # CheckResult.kind: why a check failed
    "wrong": "the property did not hold",
    "raised": "the student's code raised",
    "not implemented": "the function still raises NotImplementedError",
    "not defined": "the submission does not define a function the check needs",
    "import error": "the submission could not be imported",
    "unreadable": "the submission could not be loaded (not a zip, no Python file...)",
    "timeout": "a call did not finish in time (or an earlier one of the same function did not)",
    "memory": "the student's code ran out of memory",
    "disk": "the student's code wrote more to disk than the limit",
    "crash": "the worker died or its reply was unusable",
    "skipped": "not run: the submission's worker restart budget was spent",
    "gated": "the property held, but a check it requires failed",
    "not run": "grading stopped before this check (a signal, or the grader's sandbox failed)",
}


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
    grader_problem: str = ""  # why grading did not finish through no fault of the submission, if so
    source: bytes = b""  # the graded module as the worker imported it (a notebook's converted code)
    elapsed: float = 0.0
    hidden_points: float = 0.0  # points of hidden checks that did not run (`check`: graded after submission)

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


# The per-call seeds the worker gets are keyed with this course secret (environment variable);
# the default is fixed, so grades are reproducible, and public: set it on the grading host.
SECRET_ENV = "DGM_COURSE_SECRET"
DEFAULT_SECRET = b"dgm-grade default course secret"


def call_seed_key(files: dict[str, bytes]) -> bytes:
    """The key of a submission's per-call seeds: the course secret, keyed on the submission's bytes.

    Seeds that student code sees (``torch.initial_seed()`` in the worker) are then a keyed hash:
    without the secret they cannot be matched to a check, and what one submission learns about
    them (printed in its feedback, say) says nothing about the seeds of a changed submission.
    The same submission, seed and secret give the same seeds, so the same grade.
    """
    secret = os.environ.get(SECRET_ENV, "").encode() or DEFAULT_SECRET
    content = hashlib.sha256()
    for name in sorted(files):
        content.update(hashlib.sha256(name.encode()).digest() + hashlib.sha256(files[name]).digest())
    return hmac.new(secret, b"dgm-grade call seeds\0" + content.digest(), hashlib.sha256).digest()


def call_seed(key: bytes, seed: int, offset: int) -> int:
    """The seed the worker gets for a call of a check seeded ``seed``, with ``seed_offset`` ``offset``."""
    return int.from_bytes(hmac.new(key, f"{seed}:{offset}".encode(), hashlib.sha256).digest()[:4], "big")


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
    standby: Standby | None = None,
) -> Grade:
    """Run ``checks`` (default: all of the assignment's) against a submission.

    ``standby``: a worker already started for this submission (grader/standby.py); it is used or
    closed here either way. Grades are the same with and without one.
    """
    started = time.monotonic()
    checks = list(assignment.checks if checks is None else checks)
    seed = assignment.config.seed if seed is None else seed
    limits = assignment.config.limits
    result = Grade(assignment, [], seed, sandbox.name, sandbox.isolation)
    if isinstance(submission, SubmissionError):
        if standby is not None:
            standby.close()
        result.problem = str(submission)
        for c in checks:
            result.results.append(CheckResult(c, False, 0.0, f"The submission could not be loaded: {submission}", 0.0,
                                              brief="not graded: the submission could not be loaded",
                                              kind="unreadable"))
        result.elapsed = time.monotonic() - started
        return result
    result.notes = list(submission.notes)
    result.source = submission.files.get(f"{submission.module}.py", b"")
    client = WorkerClient(
        sandbox, submission.files, submission.module, import_timeout=limits.import_timeout_s,
        max_frame_bytes=limits.max_frame_mb << 20, device=device, max_restarts=limits.max_restarts,
        import_budget=limits.import_budget_s, standby=standby,
    )
    source = StudentModule.parse(submission.files.get(f"{submission.module}.py", b""), f"{submission.module}.py")
    key = call_seed_key(submission.files)
    pins = required_checks(checks)
    reported = 0  # results already handed to ``progress``
    try:
        for i, c in enumerate(checks):
            try:
                if STOP.active and STOP.signum:  # came between two checks
                    raise Interrupted(STOP.signum)
                STOP.armed = True
                r = run_check(
                    c, client, seed=check_seed(seed, assignment.id, c.id),
                    examples=c.examples or assignment.config.examples, timeout=timeout or c.timeout or limits.timeout_s,
                    shrink=shrink, module=submission.module, source=source, explain=submission.explain, key=key,
                )
            except Interrupted as exc:
                client.close()  # the worker goes now, not after the results are written
                stopped(result, checks[i:], f"grading was stopped by {signal.Signals(exc.signum).name}")
                break
            except SandboxLost as exc:
                if client.status is None:  # not a single worker started: the sandbox does not work here at all
                    raise SandboxUnavailable(str(exc)) from None
                client.close()
                result.grader_problem = f"the grader's sandbox stopped working: {exc}"
                stopped(result, checks[i:], f"{result.grader_problem} (not a fault of your code: ask your TA to "
                        "grade it again)")
                break
            finally:
                STOP.armed = False
            result.results.append(r)
            pending = {x.id for x in checks[i + 1:]}
            apply_requirements(result.results, pins, pending)
            while progress and reported <= i and not pins[result.results[reported].check.id] & pending:
                progress(result.results[reported])  # in order, once its score is final
                reported += 1
            if stop_at_first_failure and not r.passed:
                break
        if client.import_output.strip():
            result.notes.append(f"{submission.module}.py printed when imported:\n{client.import_output.strip()[-1500:]}")
        if not result.problem:  # else a signal stopped grading, and said so
            status = client.module()
            if not status.ok:
                result.problem = submission.explain(f"{submission.module} could not be imported: {status.error}")
            elif not any(f.split(".")[0] in status.names for f in assignment.config.functions):
                result.problem = submission.defines_none(assignment.config.functions)
    finally:
        client.close()
    apply_requirements(result.results, pins)
    for r in result.results[reported:] if progress else ():
        progress(r)
    add_root_cause_hints(result.results, source)
    result.elapsed = time.monotonic() - started
    return result


def stopped(result: Grade, left: list[Check], why: str) -> None:
    """``left`` (the check that was running, and the later ones) fail, not run: ``why`` ("grading was
    stopped by SIGTERM", say)."""
    result.problem = (f"{why}, after {len(result.results)} of {len(result.results) + len(left)} checks; "
                      "the checks not run score 0")
    for c in left:
        result.results.append(CheckResult(c, False, 0.0, f"not run: {why}", 0.0, brief=f"not run: {why}",
                                          kind="not run"))


def required_checks(checks: list[Check]) -> dict[str, frozenset[str]]:
    """Check id -> the ids of the checks in ``checks`` it requires, directly or through others."""
    direct = {c.id: set(c.requires) for c in checks}
    closure: dict[str, frozenset[str]] = {}
    for c in checks:
        seen, stack = set(), list(direct[c.id])
        while stack:
            pin = stack.pop()
            if pin in direct and pin not in seen and pin != c.id:
                seen.add(pin)
                stack += direct[pin]
        closure[c.id] = frozenset(seen)
    return closure


def apply_requirements(results: list[CheckResult], pins: dict[str, frozenset[str]],
                       pending: set[str] | frozenset[str] = frozenset()) -> None:
    """A passed check whose value pins failed scores 0 (``pins``: from ``required_checks``).

    Consistency and special-case properties (forward and inverse agree, ``w = 0``
    gives ``eps_uncond``) hold for degenerate answers too: the identity, zeros,
    an echo of an input. Their points count only when the checks pinning the
    function's value on generic inputs pass. A required check that is not
    part of the run (a hidden pin under ``check``), or not run because grading
    stopped, gates nothing; one still ``pending`` gates nothing yet.
    """
    by_id = {r.check.id: r for r in results}
    for r in results:
        if not r.passed or pins[r.check.id] & pending:
            continue
        failed = [by_id[p] for p in sorted(pins[r.check.id])
                  if p in by_id and not (by_id[p].passed or by_id[p].gated_by or by_id[p].kind == "not run")]
        if failed:
            names = "; ".join(f"'{p.check.name}'" for p in failed)
            r.passed, r.score, r.gated_by = False, 0.0, tuple(p.check.name for p in failed)
            r.kind = "gated"
            r.output = (f"Counts only when {names} also passes. This property holds for your code, but on its own "
                        "it also holds for answers that are not the function (zeros, the identity, an echo of an "
                        "input), so it scores only together with the check that pins the value. Fix that check first.")


def run_check(check: Check, client: WorkerClient, *, seed: int, examples: int, timeout: float, shrink: bool,
              module: str, source: StudentModule | None = None, explain: Callable[[str], str] = str,
              key: bytes | None = None) -> CheckResult:
    """Run one check.

    ``source``: the student's module as read by the judge (for where errors were raised);
    ``explain``: rewrites worker tracebacks in terms of the student's file (notebook cells);
    ``key``: of the per-call seeds (``call_seed_key``; default: from the client's files).
    """
    start = time.monotonic()
    if source is None:
        source = StudentModule.parse(client.files.get(f"{module}.py", b""), f"{module}.py")

    def failed(message: str, kind: str, *, brief: str = "", raised_in: Frame | None = None) -> CheckResult:
        message = explain(message)
        printed = client.take_output().strip()
        if printed:
            message += f"\n\nYour code printed:\n{printed[-1500:]}"
        return CheckResult(check, False, 0.0, message, time.monotonic() - start, brief=brief, raised_in=raised_in,
                           kind=kind)

    status = client.module()
    if not status.ok:
        tb = f"\n{status.traceback}" if status.traceback else ""
        return failed(f"{module}.py could not be imported: {status.error}{tb}", "import error",
                      brief=f"not graded: {module}.py could not be imported")
    missing = [n for n in check.needs if n.split(".")[0] not in status.names]
    if missing:
        what = "not defined" if missing[0] == check.function else f"needs {missing[0]}, which is not defined"
        return failed(f"{', '.join(missing)} is not defined in {module}.py (define it with exactly this name)",
                      "not defined", brief=f"{what} in {module}.py")
    earlier = [n for n in check.needs if n in client.timed_out]
    if earlier:
        return failed(f"skipped: {client.timed_out[earlier[0]]}", "timeout",
                      brief=f"skipped: {earlier[0]} did not finish in time in an earlier check")

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    key = call_seed_key(client.files) if key is None else key
    student = Student(client, seed=seed, timeout=timeout,
                      call_seed=lambda offset: call_seed(key, seed, offset))

    def new_example() -> None:  # what the student printed and returned so far belongs to other examples
        client.take_output()
        student.last_call = None

    body = seeded(check.run, seed, examples=examples, shrink=shrink, before_each=new_example)
    try:
        body(student)
    except WorkerFault as exc:
        return failed(exc.reason, exc.kind, brief=exc.brief)
    except StudentError as exc:
        frame = raising_frame(exc, source)
        if is_not_implemented(exc, frame):
            message, brief = not_implemented(check.function, frame, exc.function)
            return failed(message, "not implemented", brief=brief, raised_in=frame)
        tb = f"\n{exc.traceback.rstrip()}" if exc.traceback.strip() else ""
        return failed(f"{exc.function} raised {exc.message}{tb}{exc.handout}{counterexample(exc)}",
                      "memory" if exc.message.startswith("MemoryError") else "raised", raised_in=frame)
    except CheckFailed as exc:
        return failed(f"{exc}{counterexample(exc)}", "wrong")
    except Flaky as flaky:  # a failure that did not reproduce when hypothesis replayed it
        inner = getattr(flaky, "exceptions", [flaky])[0]
        if isinstance(inner, WorkerFault):
            return failed(inner.reason, inner.kind, brief=inner.brief)
        if isinstance(inner, StudentError):
            what = f"{inner.function} raised {inner.message}"
        else:
            what = str(inner) if isinstance(inner, CheckFailed) else unusable_output(inner, student.last_call)
        return failed(f"{what}{counterexample(inner)}\n(the failure did not reproduce on a second run: "
                      "is the function nondeterministic?)", "raised" if isinstance(inner, StudentError) else "wrong")
    except HypothesisException as exc:
        return failed(f"grader error in this check ({type(exc).__name__}); please report it: {exc}", "wrong")
    except Exception as exc:  # the check's own code raised on an output it could not use (wrong type, say)
        return failed(f"{unusable_output(exc, student.last_call)}{counterexample(exc)}", "wrong")
    client.take_output()
    return CheckResult(check, True, float(check.points), "", time.monotonic() - start)


def seeded(body: Callable, seed: int, *, examples: int, shrink: bool,
           before_each: Callable[[], object] | None = None) -> Callable:
    """A check body with hypothesis set up for grading (no-op for a body without @given):
    ``examples`` examples from ``seed``, no database, no deadline, shrinking only if ``shrink``.

    before_each: called at the start of every example hypothesis runs (the judge
    drops what the student printed before it, so a failure shows what its own
    example printed).
    """
    if getattr(body, "is_hypothesis_test", False):
        phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
        body._hypothesis_internal_use_settings = settings(
            max_examples=examples, deadline=None, database=None, derandomize=False, phases=phases,
            suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
            verbosity=Verbosity.normal,
        )
        body._hypothesis_internal_use_seed = seed
        if before_each is not None:
            return _each_example(body, before_each)
    return body


def _each_example(body: Callable, before_each: Callable[[], object]) -> Callable:
    """``body`` (a @given test) calling ``before_each`` before each example, through
    hypothesis' replaceable ``inner_test``, which is put back afterwards."""
    test = body.hypothesis.inner_test

    @functools.wraps(test)
    def each_example(*args, **kwargs):
        before_each()
        return test(*args, **kwargs)

    def run(*args, **kwargs):
        body.hypothesis.inner_test = each_example
        try:
            return body(*args, **kwargs)
        finally:
            body.hypothesis.inner_test = test

    return run
