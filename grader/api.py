"""What the CLI does, as keyword-only functions (also usable from Python)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal

from .assignment import ASSIGNMENTS_DIR, Assignment, UnknownAssignment, assignment_ids, load_assignment
from .config import load_config
from .judge import CheckResult, Grade, grade
from .sandbox.base import Sandbox
from .submission import SubmissionError, load_submission

SandboxKind = Literal["auto", "docker", "process"]


class UsageError(Exception):
    """The command cannot be used as given (exit code 2)."""


def make_sandbox(assignment: Assignment, *, kind: SandboxKind = "auto", gpu: bool = False, slot: int | None = None,
                 image: str | None = None) -> Sandbox:
    """The sandbox to grade in: docker when asked (or auto and available), else the process sandbox."""
    limits = assignment.config.limits.sandbox_limits()
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
        from .submission import open_zip

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


def run_grading(
    *,
    submission: Path,
    assignment_id: str | None,
    hidden: bool,
    sandbox: SandboxKind = "auto",
    gpu: bool = False,
    seed: int | None = None,
    timeout: float | None = None,
    progress: Callable[[CheckResult], None] | None = None,
) -> Grade:
    """Load the assignment and the submission, and grade it (public checks only unless ``hidden``)."""
    if not Path(submission).exists():
        raise UsageError(f"{submission}: no such file or folder")
    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be positive")
    try:
        assignment = load_assignment(find_assignment(Path(submission), assignment_id), hidden=hidden)
    except UnknownAssignment as exc:
        raise UsageError(str(exc)) from None
    box = make_sandbox(assignment, kind=sandbox, gpu=gpu)
    try:
        sub = load_submission(Path(submission), assignment.config.module, functions=assignment.config.functions)
    except SubmissionError as exc:
        sub = exc  # graded all the same: every check fails with the reason
    checks = assignment.checks if hidden else assignment.public_checks
    return grade(assignment, sub, sandbox=box, checks=checks, seed=seed, timeout=timeout,
                 device="cuda" if gpu else "cpu", progress=progress)
