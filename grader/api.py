"""What the CLI does, as keyword-only functions (also usable from Python).

Import cost matters here: ``check`` and ``grade`` start the worker before the
judge (and torch) is imported, so this module and what it imports at the top
stay free of torch; the judge, the checks and the submission loader are
imported inside the functions that use them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Sequence

from .assignment import (ASSIGNMENTS_DIR, Assignment, UnknownAssignment, assignment_ids, hidden_points,
                         load_assignment)
from .config import AssignmentConfig, load_config
from .sandbox.base import Limits, Sandbox

if TYPE_CHECKING:
    from .checks import Check
    from .judge import CheckResult, Grade
    from .standby import Standby

SandboxKind = Literal["auto", "docker", "process", "none"]


class UsageError(Exception):
    """The command cannot be used as given (exit code 2)."""


def make_sandbox(assignment: Assignment, *, kind: SandboxKind = "auto", gpu: bool = False, slot: int | None = None,
                 image: str | None = None) -> Sandbox:
    """The sandbox to grade ``assignment`` in (see ``sandbox_for``)."""
    return sandbox_for(assignment.config.limits.sandbox_limits(), kind=kind, gpu=gpu, slot=slot, image=image)


def sandbox_for(limits: Limits, *, kind: SandboxKind = "auto", gpu: bool = False, slot: int | None = None,
                image: str | None = None) -> Sandbox:
    """The sandbox to grade in: docker when asked (or auto and available), else the process sandbox;
    ``none`` (no isolation, benchmarks only) when DGM_UNSAFE_NO_SANDBOX=1 allows it."""
    if kind == "none":
        from .sandbox.unisolated import UNSAFE_ENV, UnisolatedSandbox

        if os.environ.get(UNSAFE_ENV) != "1":
            raise UsageError(f"--sandbox none runs student code with no isolation at all (benchmarks only); "
                             f"set {UNSAFE_ENV}=1 to allow it")
        if gpu:
            raise UsageError("--sandbox none does not take --gpu")
        return UnisolatedSandbox()
    if gpu:
        _require_gpu(kind)
    if kind in ("docker", "auto"):
        try:
            from .sandbox import docker as docker_sandbox
        except ImportError:
            docker_sandbox = None  # type: ignore[assignment]
        if docker_sandbox is not None:
            image = image or docker_sandbox.DEFAULT_IMAGE
            if kind == "docker" or docker_sandbox.docker_available(image):
                return docker_sandbox.DockerSandbox(limits, gpu=gpu, image=image)
        elif kind == "docker":
            raise UsageError("the docker sandbox is not available in this installation")
    from .sandbox.process import ProcessSandbox

    return ProcessSandbox(limits, gpu=gpu, slot=slot)


def _require_gpu(kind: str) -> None:
    if kind == "docker":
        return  # the container's GPU is checked when it starts
    import torch

    if not torch.cuda.is_available():
        raise UsageError("--gpu was given but no CUDA GPU is available to torch on this machine")


def find_assignment(submission: Path, assignment_id: str | None) -> str:
    """The assignment id given, or the one whose module name the submission holds."""
    if assignment_id:
        return assignment_id
    ids = assignment_ids()
    by_module = {load_config(ASSIGNMENTS_DIR / i / "config.toml").module: i for i in ids}
    names = {submission.stem} if submission.is_file() else {p.stem for p in submission.rglob("*")} if submission.is_dir() else set()
    if submission.suffix == ".zip":
        from .submission import SubmissionError, open_zip

        try:
            with open_zip(submission) as archive:
                names = {Path(n).stem for n in archive.namelist()}
        except SubmissionError:
            names = set()
    matches = sorted({by_module[n] for n in names if n in by_module})
    if not matches:  # Gradescope-style names: "vae (2)", "my_vae", "VAE_final"
        matches = sorted({i for m, i in by_module.items() for n in names if m in n.lower()})
    if len(matches) == 1:
        return matches[0]
    raise UsageError(f"cannot tell which assignment {submission.name} is for; pass --assignment (one of: {', '.join(ids)})")


def daily_submission_limit(assignment_id: str) -> int | None:
    """The assignment's daily submission limit (config.toml [gradescope]), None when unlimited or unknown."""
    try:
        return load_config(ASSIGNMENTS_DIR / assignment_id / "config.toml").gradescope.daily_submission_limit
    except Exception:  # an unknown assignment: grading says so
        return None


def check_out_path(out: Path) -> None:
    """Refuse an ``--out`` that results.json cannot be written to, before grading (a UsageError, exit 2).

    Creates the missing parent folders (writing would) and tries a file there.
    """
    import tempfile

    out = Path(out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the file to write, e.g. {out / 'results.json'}")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--out {out}: {parent} is a file, not a folder")
        if parent.is_dir():
            break
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".check"):
            pass
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def parse_only(text: str | None) -> list[str] | None:
    """``--only a,b`` -> ["a", "b"]; None (or only commas) -> None: every check."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return names or None


def select_checks(checks: Sequence[Check], only: Sequence[str] | None) -> list[Check]:
    """The checks ``--only`` names: check ids or student functions (every check of that function).

    The checks a selected one requires (its value pins) run too, so a consistency
    property scores exactly as in a full grade. Unknown names are a UsageError that
    lists what there is.
    """
    if not only:
        return list(checks)
    functions = {c.function for c in checks}
    ids = {c.id for c in checks}
    unknown = [n for n in only if n not in functions and n not in ids]
    if unknown:
        raise UsageError(f"--only: no check or function named {', '.join(map(repr, unknown))} here "
                         f"(functions: {', '.join(sorted(functions))}; `dgm-grade list` shows the check ids)")
    from .judge import required_checks

    chosen = {c.id for c in checks if c.id in only or c.function in only}
    pins = required_checks(list(checks))
    chosen |= {p for c in list(chosen) for p in pins[c]}
    return [c for c in checks if c.id in chosen]


@dataclass
class Grading:
    """What a grading run uses, prepared once (``prepare_grading``): ``check --watch`` grades many
    versions of a file with one."""

    assignment: Assignment
    pool: tuple[Check, ...]  # the checks of this command (public, or public and hidden)
    checks: list[Check]  # those ``--only`` selected (all of ``pool`` without it)
    sandbox: Sandbox
    only: Sequence[str] | None = None
    seed: int | None = None
    timeout: float | None = None
    gpu: bool = False
    hidden: bool = True  # the hidden checks are part of this run (``grade``), not only the public ones (``check``)

    def grade(self, submission: Path, *, standby: Standby | None = None,
              progress: Callable[[CheckResult], None] | None = None) -> Grade:
        """Load ``submission`` and grade it; ``standby``: a worker started for it (used or closed here)."""
        from .judge import grade
        from .submission import SubmissionError, load_submission

        config = self.assignment.config
        try:
            sub = load_submission(Path(submission), config.module, functions=config.functions)
        except SubmissionError as exc:
            sub = exc  # graded all the same: every check fails with the reason
        result = grade(self.assignment, sub, sandbox=self.sandbox, checks=self.checks, seed=self.seed,
                       timeout=self.timeout, device="cuda" if self.gpu else "cpu", progress=progress, standby=standby)
        if not self.hidden:  # the score line says how many points the hidden checks grade
            result.hidden_points = hidden_points(self.assignment.id)
        if self.only:
            result.notes.append(f"--only {','.join(self.only)}: {len(self.checks)} of {len(self.pool)} checks ran "
                                "(with the checks they require); the score counts these only.")
        return result


def check_grading_options(submission: Path, timeout: float | None) -> None:
    """UsageErrors for a missing submission or a timeout that is not positive."""
    if not Path(submission).exists():
        raise UsageError(f"{submission}: no such file or folder")
    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be positive")


def assignment_config(assignment_id: str) -> AssignmentConfig:
    """An assignment's config alone (no checks, no torch); UsageError for an unknown id."""
    path = ASSIGNMENTS_DIR / assignment_id / "config.toml"
    if not path.is_file():
        raise UsageError(f"unknown assignment '{assignment_id}' (known: {', '.join(assignment_ids()) or 'none'})")
    return load_config(path)


def prepare_grading(*, assignment_id: str, hidden: bool, sandbox: Sandbox, only: Sequence[str] | None = None,
                    seed: int | None = None, timeout: float | None = None, gpu: bool = False) -> Grading:
    """Load the assignment's checks (this imports torch) and select those ``only`` names."""
    try:
        assignment = load_assignment(assignment_id, hidden=hidden)
    except UnknownAssignment as exc:
        raise UsageError(str(exc)) from None
    pool = assignment.checks if hidden else assignment.public_checks
    return Grading(assignment, pool, select_checks(pool, only), sandbox, only=list(only) if only else None,
                   seed=seed, timeout=timeout, gpu=gpu, hidden=hidden)


def start_grading(*, submission: Path, assignment_id: str | None, hidden: bool, sandbox: SandboxKind = "auto",
                  gpu: bool = False, seed: int | None = None, timeout: float | None = None,
                  only: Sequence[str] | None = None, warm_start: bool = True) -> tuple[Grading, Standby | None]:
    """Check the options, start a worker (``warm_start``: see grader/standby.py), then load the checks.

    The worker is started first, so that it imports torch while this process imports the judge and
    the checks: two cores at work instead of one. Returns the prepared grading and that worker
    (None without ``warm_start``), for ``Grading.grade``.
    """
    from .standby import start_standby

    check_grading_options(submission, timeout)
    assignment_id = find_assignment(Path(submission), assignment_id)
    box = sandbox_for(assignment_config(assignment_id).limits.sandbox_limits(), kind=sandbox, gpu=gpu)
    standby = start_standby(box) if warm_start else None
    try:
        grading = prepare_grading(assignment_id=assignment_id, hidden=hidden, sandbox=box, only=only, seed=seed,
                                  timeout=timeout, gpu=gpu)
    except BaseException:
        if standby is not None:
            standby.close()
        raise
    return grading, standby


def run_grading(
    *,
    submission: Path,
    assignment_id: str | None,
    hidden: bool,
    sandbox: SandboxKind = "auto",
    gpu: bool = False,
    seed: int | None = None,
    timeout: float | None = None,
    only: Sequence[str] | None = None,
    progress: Callable[[CheckResult], None] | None = None,
    warm_start: bool = True,
) -> Grade:
    """Load the assignment and the submission, and grade it (public checks only unless ``hidden``;
    ``only``: the checks or functions to run, see ``select_checks``; ``warm_start``: see
    ``start_grading``; the grade is the same either way)."""
    grading, standby = start_grading(submission=submission, assignment_id=assignment_id, hidden=hidden,
                                     sandbox=sandbox, gpu=gpu, seed=seed, timeout=timeout, only=only,
                                     warm_start=warm_start)
    return grading.grade(Path(submission), standby=standby, progress=progress)


def run_batch(*, folder: Path, out: Path, assignment_id: str, backend: str = "local", workers: int | None = None,
              sandbox: SandboxKind = "auto", gpu: bool = False, gpus_per_task: float = 1.0, seed: int | None = None,
              timeout: float | None = None, only: Sequence[str] | None = None, regrade: bool = False,
              ray_address: str | None = None, progress=None, warm_start: bool | None = None):
    """Check the options (a UsageError for anything unusable, before grading), then grade the class
    (``warm_start``: see grader/batch/local.py, None: where a core is spare; the grades are the same
    without it)."""
    from .batch.roster import RosterError, find_submissions
    from .batch.run import BatchOptions, run_batch as run

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder (batch grades a folder of submissions)")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the class's results")
    if backend not in ("local", "ray"):
        raise UsageError(f"--backend must be local or ray, not '{backend}'")
    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be positive")
    if not 0 < gpus_per_task <= 1 and gpu:
        raise UsageError("--gpus-per-task must be in (0, 1]")
    try:
        assignment = load_assignment(assignment_id)
        find_submissions(folder, skip=out)
    except (UnknownAssignment, RosterError) as exc:
        raise UsageError(str(exc)) from None
    only = list(only) if only else None
    select_checks(assignment.checks, only)  # unknown names: a UsageError now, not one per student
    if gpu:
        _require_gpu(sandbox)
    if backend == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UsageError("--backend ray needs Ray: pip install 'dgm-grade[ray]'")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot make the folder ({exc.strerror or exc})") from None
    options = BatchOptions(assignment=assignment_id, backend=backend, workers=workers, sandbox=sandbox, gpu=gpu,
                           gpus_per_task=gpus_per_task, seed=seed, timeout=timeout, only=only, regrade=regrade,
                           ray_address=ray_address, warm_start=warm_start)
    return run(folder, out, options, progress)


def build_student_bundle(*, assignment_id: str, out: Path) -> list[Path]:
    """The student bundle of ``assignment_id`` (a wheel and the handout zip) in the folder ``out``
    (grader/deploy/student.py); a UsageError for anything unusable."""
    from .deploy.student import build_bundle
    from .deploy.wheel import BuildError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give the folder to write the bundle into")
    try:
        return build_bundle(assignment_id, out)
    except (UnknownAssignment, BuildError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
