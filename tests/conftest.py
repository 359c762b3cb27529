"""Shared fixtures: grade real submissions (reference, template, mutants, hostile code)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grader.api import make_sandbox  # noqa: E402
from grader.assignment import load_assignment  # noqa: E402
from grader.judge import Grade, grade  # noqa: E402
from grader.submission import Submission, load_submission, submission_from_bytes  # noqa: E402


def grade_source(assignment_id: str, source: str | bytes | Path, *, functions: tuple[str, ...] | None = None,
                 hidden: bool = True, fast: bool = False, seed: int | None = None) -> Grade:
    """Grade module source (or a path) in the process sandbox.

    functions: only the checks about these functions; fast: stop at the first
    failing check and skip shrinking (mutant runs).
    """
    assignment = load_assignment(assignment_id, hidden=hidden)
    if isinstance(source, Path):
        sub: Submission = load_submission(source, assignment.config.module, functions=assignment.config.functions)
    else:
        data = source.encode() if isinstance(source, str) else source
        sub = submission_from_bytes(data, assignment.config.module)
    checks = [c for c in assignment.checks if functions is None or c.function in functions]
    return grade(assignment, sub, sandbox=make_sandbox(assignment, kind="process"), checks=checks, seed=seed,
                 shrink=not fast, stop_at_first_failure=fast)


def failed(grade: Grade) -> list[str]:
    """Names of the checks a grade lost points on."""
    return [r.check.name for r in grade.results if not r.passed]


def reference_source(module: str) -> str:
    return (ROOT / "reference" / f"{module}.py").read_text()


def mutate(source: str, old: str, new: str) -> str:
    """Replace exactly one occurrence of ``old`` (fails loudly if the anchor is gone)."""
    assert source.count(old) == 1, f"mutation anchor {old!r} found {source.count(old)} times"
    return source.replace(old, new)


@pytest.fixture
def grade_with():
    return grade_source


def docker_unavailable(image: str) -> str | None:
    """Why the Docker sandbox cannot run here (no daemon, no or outdated image), or None."""
    from grader.sandbox.base import SandboxUnavailable

    try:
        from grader.sandbox.docker import _client, check_image
    except ImportError as exc:
        return f"the docker sandbox cannot be imported: {exc}"
    try:
        api = _client(timeout=5)
    except SandboxUnavailable as exc:
        return f"{exc} (.ci/docker-setup.sh sets up Docker)"
    try:
        check_image(api, image)
    except SandboxUnavailable as exc:
        return str(exc)
    finally:
        api.close()
    return None


def require_docker(image: str = "dgm-grade:latest") -> None:
    """At the top of a module of Docker tests (marked docker): skip the module, with the reason, when the
    daemon or the grading image is missing; under DGM_REQUIRE_DOCKER=1 (CI: .ci/run set Docker up) fail."""
    reason = docker_unavailable(image)
    if reason and os.environ.get("DGM_REQUIRE_DOCKER") == "1":
        raise RuntimeError(f"DGM_REQUIRE_DOCKER=1 but the docker sandbox is unavailable: {reason}")
    if reason:
        pytest.skip(reason, allow_module_level=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--validate-all", action="store_true", default=False,
                     help="tests/test_mutate.py: `dgm-grade validate ID --quick` in full for every assignment "
                          "(alternatives, hand-written special cases, 2 seeds, 12 mutants: about 40 min on 2 cores)")
    parser.addoption("--stop-docker-daemon", action="store_true", default=False,
                     help="tests/test_docker_sandbox.py: stop the Docker daemon in the middle of a grading (and start "
                          "it again with .ci/docker-setup.sh); run it alone: -p no:xdist -k docker_daemon")
    parser.addoption("--gradescope-all", action="store_true", default=False,
                     help="tests/test_gradescope.py: every assignment's autograder under Gradescope's limits "
                          "(about 10 minutes), and docs/gradescope.md's table refreshed")
    parser.addoption("--hostile-docker-all", action="store_true", default=False,
                     help="tests/test_hostile_docker.py: every attack of tests/hostile/ against the Docker sandbox, "
                          "not only the few most likely to differ from the process sandbox (about 10 min on 2 cores)")
    parser.addoption("--student-bundle-all", action="store_true", default=False,
                     help="tests/test_student_bundle.py: every assignment's student bundle grades its samples and "
                          "the `validate --quick` mutants with the verdicts of `grade` (16 minutes with -n 2 on 2 cores)")


# The figures docs/security.md quotes: tests of attacks and faults that passed, per suite.
SECURITY_SUITES = {
    "tests/test_hostile.py": "hostile submissions and faults, process sandbox",
    "tests/test_docker_sandbox.py": "attacks on the Docker sandbox",
    "tests/test_hostile_docker.py": "hostile submissions, Docker sandbox",
    "tests/test_gradescope.py": "simulated Gradescope (hostile upload included)",
}


def pytest_configure(config: pytest.Config) -> None:
    """In CI, .ci/run sets Docker up in the background while the README's test command makes the venv;
    the session waits here, in the controller, before any worker starts, until the setup has finished
    (it writes its exit status to the file DGM_DOCKER_SETUP_DONE names), and stops at once when it failed."""
    done = os.environ.get("DGM_DOCKER_SETUP_DONE")
    if not done or hasattr(config, "workerinput"):
        return
    started = time.monotonic()
    while not Path(done).is_file():
        if time.monotonic() - started > 1800:
            pytest.exit(f"the Docker setup did not finish within 30 minutes ({done} was not written)", returncode=1)
        time.sleep(2)
    status = Path(done).read_text().strip()
    log = os.environ.get("DGM_DOCKER_SETUP_LOG", "")
    if status != "0":
        tail = Path(log).read_text()[-3000:] if log and Path(log).is_file() else ""
        pytest.exit(f"the Docker setup failed (exit {status}); the end of {log or 'its log'}:\n{tail}", returncode=1)
    print(f"[conftest] waited {time.monotonic() - started:.0f} s for the Docker setup (log: {log})", file=sys.stderr)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow run first (in their file order): with `-n auto`, a minutes-long test picked
    up last would leave the other workers idle until it ends."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_terminal_summary(terminalreporter) -> None:
    counts: dict[str, list[int]] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            suite = getattr(report, "nodeid", "").split("::")[0]
            if suite in SECURITY_SUITES and (report.when == "call" or outcome != "passed"):
                held = counts.setdefault(suite, [0, 0])
                held[0] += outcome == "passed"
                held[1] += 1
    if not counts:
        return
    from grader.sandbox.process import jail_kind

    terminalreporter.write_sep("-", "security figures (docs/security.md)")
    every = terminalreporter.config.getoption("--hostile-docker-all")
    for suite, (ok, total) in counts.items():
        where = f" ({jail_kind()[0] or 'no'} jail)" if suite.endswith("test_hostile.py") else ""
        if suite.endswith("test_hostile_docker.py"):
            where = " (every attack)" if every else " (CI's few; every attack: --hostile-docker-all)"
        terminalreporter.write_line(f"{SECURITY_SUITES[suite]}{where}: {ok}/{total} held")
