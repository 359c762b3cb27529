"""`dgm-grade`: a thin typer app over grader/api.py.

Exit codes (../shared/spec/grader_interface.md): check 0 = full marks, 1 =
anything less; grade 0 whenever results.json was written; 2 = unusable
command. No user-facing error shows a traceback from our code. SIGTERM or
SIGINT while grading: the worker is killed, the checks done so far are
reported (``grade`` writes them to results.json, with the reason), and the
exit code is 128 + the signal's number, as a shell reports a killed command.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from . import api, report, results
from .assignment import assignment_ids, load_assignment
from .config import ConfigError
from .stopping import stop_on_signals
from .sandbox.base import SandboxUnavailable

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Property-based autograder for deep generative models courses.")
console = report.make_console()
err = report.make_console(stderr=True)

SANDBOX_HELP = "where student code runs: docker, process, or auto (docker when a daemon and the image are there)"


@app.command()
def check(
    submission: Path = typer.Argument(..., help="vae.py, vae.ipynb, a folder or a .zip"),
    assignment: Optional[str] = typer.Option(None, "--assignment", "-a", help="assignment id, e.g. hw2_vae"),
    sandbox: str = typer.Option("auto", help=SANDBOX_HELP),
    gpu: bool = typer.Option(False, "--gpu", help="run student code on a CUDA GPU"),
    seed: Optional[int] = typer.Option(None, help="grading seed (default: the assignment's)"),
    timeout: Optional[float] = typer.Option(None, help="seconds per call of a student function"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated functions or check ids to run "
                                       "(with the checks they require)"),
    watch: bool = typer.Option(False, "--watch", help="check again on every save, printing what changed "
                               "(Ctrl-C to stop)"),
) -> None:
    """Self-check: run the public checks and print a readable report."""
    from .selfcheck import run_check

    console.print(f"[bold]dgm-grade check[/] {escape(str(submission))}")
    if watch:
        _watch(submission, assignment=assignment, sandbox=sandbox, gpu=gpu, seed=seed, timeout=timeout, only=only)
        return
    grade, code, stop = run_check(submission, console=console, assignment=assignment, sandbox=_sandbox(sandbox),
                                  gpu=gpu, seed=seed, timeout=timeout, only=api.parse_only(only))
    _exit_if_stopped(stop, grade=grade)
    raise typer.Exit(code)


def _watch(submission: Path, *, assignment: Optional[str], sandbox: str, gpu: bool, seed: Optional[int],
           timeout: Optional[float], only: Optional[str]) -> None:
    """``check --watch``: grade on every save until Ctrl-C or SIGTERM, which end it cleanly (exit 0)."""
    import signal

    from .watch import watch

    def terminate(signum, frame):  # SIGTERM as Ctrl-C: the workers go, the watch ends
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    standby = None
    try:
        grading, standby = api.start_grading(submission=submission, assignment_id=assignment, hidden=False,
                                             sandbox=_sandbox(sandbox), gpu=gpu, seed=seed, timeout=timeout,
                                             only=api.parse_only(only))
        watch(submission, grading, console, standby=standby)
    except KeyboardInterrupt:
        console.print("stopped watching")
    finally:
        if standby is not None:
            standby.close()


@app.command("grade")
def grade_cmd(
    submission: Path = typer.Argument(..., help="vae.py, vae.ipynb, a folder or a .zip"),
    assignment: str = typer.Option(..., "--assignment", "-a", help="assignment id, e.g. hw2_vae"),
    out: Path = typer.Option(Path("results.json"), "--out", "-o", help="where to write results.json"),
    sandbox: str = typer.Option("auto", help=SANDBOX_HELP),
    gpu: bool = typer.Option(False, "--gpu", help="run student code on a CUDA GPU"),
    seed: Optional[int] = typer.Option(None, help="grading seed (default: the assignment's)"),
    timeout: Optional[float] = typer.Option(None, help="seconds per call of a student function"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated functions or check ids to run "
                                       "(with the checks they require)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only the score"),
    metadata: Optional[Path] = typer.Option(None, "--metadata", help="Gradescope's submission_metadata.json: "
                                            "submission and user ids into extra_data, the daily submission limit"),
) -> None:
    """Grade with all checks (public and hidden) and write results.json (Gradescope format)."""
    api.check_out_path(out)
    extra: dict = {}
    if metadata is not None and metadata.exists():
        from .deploy.gradescope import read_metadata

        meta = read_metadata(metadata)
        extra = meta.extra_data()
        limit = api.daily_submission_limit(assignment)
        if limit and meta.submissions_in_last_day() >= limit:
            kept = meta.last_score()
            results.write_results(results.failure_results(
                f"Not graded: this assignment allows {limit} graded submission{'s' * (limit > 1)} in 24 hours, and "
                f"you have used them. Your previous score, {kept:g}, stands; submit again later.",
                score=kept, extra={"assignment": assignment, "daily_limit": limit, **extra}), out)
            console.print(escape(f"{submission}: over the daily limit of {limit}, not graded -> {out}"))
            return
    progress = None if quiet else report.ProgressLines(console)
    with stop_on_signals() as stop:
        grade = api.run_grading(submission=submission, assignment_id=assignment, hidden=True,
                                sandbox=_sandbox(sandbox), gpu=gpu, seed=seed, timeout=timeout,
                                only=api.parse_only(only), progress=progress)
        results.write_results(grade, out, extra=extra)
        if not quiet:
            report.print_report(console, grade)
        console.print(escape(f"{submission}: {grade.score:g} / {grade.max_score:g} -> {out}"))
    _exit_if_stopped(stop, f"; the checks done so far are in {out}", grade)


@app.command()
def batch(
    folder: Path = typer.Argument(..., help="a folder with one submission per student (file, notebook, folder or "
                                  "zip), or Gradescope's export with submission_metadata.yml"),
    assignment: str = typer.Option(..., "--assignment", "-a", help="assignment id, e.g. hw2_vae"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for grades.csv, report.html and one folder per student"),
    workers: Optional[int] = typer.Option(None, help="submissions graded at once (default: one per core; with Ray, "
                                          "the cluster's CPUs)"),
    backend: str = typer.Option("local", help="local (this machine) or ray (a Ray cluster)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="the Ray cluster to use (default: a local "
                                              "Ray, or the one RAY_ADDRESS names)"),
    sandbox: str = typer.Option("auto", help=SANDBOX_HELP),
    gpu: bool = typer.Option(False, "--gpu", help="run student code on a CUDA GPU"),
    gpus_per_task: float = typer.Option(1.0, "--gpus-per-task", help="with --gpu on Ray: GPUs per submission "
                                        "(0.25: four students share one)"),
    seed: Optional[int] = typer.Option(None, help="grading seed (default: the assignment's)"),
    timeout: Optional[float] = typer.Option(None, help="seconds per call of a student function"),
    regrade: bool = typer.Option(False, "--regrade", help="grade everyone again, even when nothing changed"),
    only: Optional[str] = typer.Option(None, "--only", help="regrade these checks or functions (comma-separated) "
                                       "for everyone and merge them into the earlier results"),
) -> None:
    """Grade a whole class: grades.csv, report.html and results.json + feedback.md per student (resumable)."""
    import signal

    from .batch.progress import BatchProgress

    def terminate(signum, frame):  # SIGTERM as Ctrl-C: the children in flight go, the class files are written
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    with BatchProgress(console) as bar:
        summary = api.run_batch(folder=folder, out=out, assignment_id=assignment, backend=backend, workers=workers,
                                sandbox=_sandbox(sandbox), gpu=gpu, gpus_per_task=gpus_per_task, seed=seed,
                                timeout=timeout, only=api.parse_only(only), regrade=regrade, ray_address=ray_address,
                                progress=bar)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.by_status.items()))
    console.print(escape(f"{len(summary.records)} students ({counts}); graded now {len(summary.graded)}, unchanged "
                         f"{len(summary.skipped)}; {summary.wall_time:.0f} s"))
    for name in ("grades.csv", "gradescope_scores.csv", "report.html"):
        console.print(escape(f"wrote {out / name}"))


@app.command("list")
def list_cmd() -> None:
    """Assignments with their checks and points."""
    from rich.table import Table

    for assignment_id in assignment_ids():
        a = load_assignment(assignment_id)
        table = Table(title=escape(f"{a.id}: {a.config.title} ({a.config.module}.py, {a.max_score:g} points)"))
        table.add_column("check")
        table.add_column("id (for --only)")
        table.add_column("points", justify="right")
        table.add_column("visibility")
        for c in a.checks:
            table.add_row(escape(c.name), escape(c.id), f"{c.points:g}", "hidden" if c.hidden else "public")
        console.print(table)


@app.command()
def handout(assignment: str = typer.Argument(..., help="assignment id, e.g. hw2_vae"),
            out: Optional[Path] = typer.Option(None, help="folder (default: assignments/ID/handout)")) -> None:
    """Generate the student handout (.py and .ipynb) from reference/."""
    from .assignment import UnknownAssignment
    from .handout import write_handout

    try:
        paths = write_handout(assignment, out)
    except UnknownAssignment as exc:
        raise api.UsageError(str(exc)) from None
    for path in paths:
        console.print(escape(f"wrote {path}"))


@app.command()
def validate(
    assignment: str = typer.Argument(..., help="assignment id, or 'all'"),
    quick: bool = typer.Option(False, "--quick", help="a fixed sample of mutants and 2 seeds (what CI runs)"),
    seeds: Optional[int] = typer.Option(None, help="reference seeds (default 50, or 2 with --quick)"),
    workers: int = typer.Option(1, help="grades run at once"),
    docs: bool = typer.Option(False, "--docs", help="refresh the table in docs/assignments.md"),
) -> None:
    """Reference full marks under many seeds, template 0, and >= 95% of mutants killed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import validate as validation
    from .assignment import UnknownAssignment

    ids = assignment_ids() if assignment == "all" else [assignment]
    reports = []
    for assignment_id in ids:
        columns = (TextColumn("validate {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("[dim]{task.fields[last]}"))
        with Progress(*columns, console=console, transient=True) as bar:  # a full run takes minutes per assignment
            task = bar.add_task(escape(assignment_id), total=None, last="")

            def advance(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, last=escape(what))

            try:
                report = validation.validate(assignment_id, quick=quick, seeds=seeds, workers=workers,
                                             progress=advance)
            except (UnknownAssignment, ValueError) as exc:  # ValueError: a bad equivalent_mutants.toml, seeds < 1
                raise api.UsageError(str(exc)) from None
        validation.print_report(console, report)
        reports.append(report)
    if docs:
        console.print(escape(f"wrote {validation.write_docs_table(reports)}"))
    raise typer.Exit(0 if all(r.passed for r in reports) else 1)


@app.command()
def gradescope(
    assignment: str = typer.Argument(..., help="assignment id, e.g. hw2_vae"),
    out: Path = typer.Option(Path("autograder.zip"), "--out", "-o", help="the zip to write"),
    torch_index: str = typer.Option("https://download.pytorch.org/whl/cpu", help="where setup.sh gets the "
                                    "CPU-only torch (a pip index URL)"),
    pypi_index: str = typer.Option("https://pypi.org/simple", help="where setup.sh gets everything else"),
) -> None:
    """Build the Gradescope autograder zip (setup.sh, run_autograder, a wheel with this assignment only)."""
    from .assignment import UnknownAssignment
    from .deploy.gradescope import BuildError, build_autograder

    if out.is_dir():
        raise api.UsageError(f"--out {out} is a folder; give the zip to write, e.g. {out / 'autograder.zip'}")
    try:
        built = build_autograder(assignment, out, torch_index=torch_index, pypi_index=pypi_index)
    except UnknownAssignment as exc:
        raise api.UsageError(str(exc)) from None
    except BuildError as exc:
        raise api.UsageError(str(exc)) from None
    console.print(escape(f"wrote {built}: upload it as the autograder of a Gradescope programming assignment "
                         "(Ubuntu 22.04 base image)"))


@app.command("student-bundle")
def student_bundle(
    assignment: str = typer.Argument(..., help="assignment id, e.g. hw2_vae"),
    out: Path = typer.Option(Path("dist"), "--out", "-o", help="the folder to write the wheel and the handout zip to"),
) -> None:
    """Build what students get: a wheel that self-checks ID with the public checks only (no reference, no hidden
    checks), and the handout zip."""
    from .deploy.student import command_name

    wheel, handout_zip = api.build_student_bundle(assignment_id=assignment, out=out)
    console.print(escape(f"wrote {wheel}\nwrote {handout_zip}\nStudents: pip install {wheel.name}, then "
                         f"`{command_name(assignment)} FILE`, or in a notebook "
                         f"`from dgm_grade.{assignment} import check; check()`"))


image_app = typer.Typer(help="The Docker grading image.", no_args_is_help=True)
app.add_typer(image_app, name="image")


@image_app.command("build")
def image_build(
    base: Optional[str] = typer.Option(None, help="base image (default: a CUDA PyTorch runtime; with --offline "
                                                  "the CPU base made by grader/deploy/docker/build-offline-base.sh)"),
    tag: str = typer.Option("dgm-grade:latest", help="tag of the grading image"),
    offline: bool = typer.Option(False, "--offline", help="build without an image registry (debootstrap base)"),
) -> None:
    """Build the grading image: torch and the worker package, nothing else of the grader."""
    from docker.errors import DockerException

    from .deploy.image import build_image

    try:
        built = build_image(base=base, tag=tag, offline=offline)
    except (RuntimeError, OSError, DockerException) as exc:
        raise SandboxUnavailable(f"could not build the image: {exc}") from None
    console.print(escape(f"built {built}"))


def _exit_if_stopped(stop, written: str = "", grade=None) -> None:
    """After the results were written: exit 128 + the signal's number when a signal stopped grading, 3 when
    the grader's sandbox failed during grading (``grade.grader_problem``: grade it again)."""
    if stop.signum:
        err.print(escape(f"dgm-grade: stopped by {stop.name}{written}"))
        raise typer.Exit(128 + stop.signum)
    if grade is not None and grade.grader_problem:
        err.print(escape(f"dgm-grade: grading did not finish: {grade.grader_problem}{written}; grade it again"))
        raise typer.Exit(3)


def _sandbox(kind: str) -> api.SandboxKind:
    if kind not in ("auto", "docker", "process", "none"):  # none: benchmarks only (sandbox/unisolated.py)
        raise api.UsageError(f"--sandbox must be docker, process or auto, not '{kind}'")
    return kind  # type: ignore[return-value]


def main() -> None:
    """Entry point: every error a user can cause is one readable line."""
    try:
        app()
    except (api.UsageError, ConfigError, SandboxUnavailable) as exc:
        err.print(f"[red]dgm-grade:[/] {escape(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[red]dgm-grade:[/] interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug of ours: one line, no traceback
        err.print(f"[red]dgm-grade: internal error:[/] {type(exc).__name__}: {escape(str(exc))} (please report this)")
        sys.exit(3)
