"""Students' self-check: the public checks, from a terminal or from inside a notebook.

    check()                 in Jupyter or Colab: grade the functions as the kernel defines them
    check("kl_normal")      only these functions or check ids (and the checks they require)
    main()                  the student bundle's command: ``dgm-check-hw2-vae vae.py``
    run_check(...)          what ``dgm-grade check`` and ``main`` share: grade, print, exit code

In a notebook, ``check`` takes the kernel's cell history (every cell it ran, in the
order it ran them), turns it into a notebook and grades that with the same pipeline
as a submitted notebook (grader/notebook.py: magics transformed, training and
plotting code dropped, each dropped line named), so what is checked is what the
kernel defines now. The judge runs in a subprocess (``python -m <this module>
--run``), never in the kernel: it seeds torch, sets its thread count and imports
hypothesis. The worker runs in the process sandbox, which probes what this
machine allows and says in ``isolation`` what held (a Colab kernel runs as root in
a container that may refuse namespaces).

Only the standard library is imported at module level: a student's kernel imports this.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ASSIGNMENTS = Path(__file__).resolve().parents[1] / "assignments"  # beside grader/, here and in the bundle
JUDGE_TIMEOUT_S = 3600  # the whole subprocess; each call of a student function has its own, shorter limit


class SelfCheckError(Exception):
    """``check`` cannot run as asked (unknown assignment, no definitions); one line says why."""


# ---------------------------------------------------------------- in a notebook


def check(*names: str, assignment: str | None = None, notebook: str | os.PathLike | None = None,
          timeout: float | None = None) -> None:
    """Grade the functions as they are defined right now with the public checks, and show the report.

    names: functions or check ids to run (default: all); assignment: its id (default: the
    only one installed, else the one whose functions this kernel defines); notebook: the
    saved .ipynb to compare the kernel's definitions with (default: the one Jupyter names,
    when it does); timeout: seconds per call of a student function.
    In Jupyter the report is HTML in the cell; elsewhere it is printed. Outside IPython
    the running script (``__main__``'s file) is graded.
    """
    shell = _ipython()
    try:
        configs = _configs()
        with tempfile.TemporaryDirectory(prefix="dgm-selfcheck-") as tmp:
            if shell is not None:
                cells = _kernel_cells(shell)
                config = _choose(configs, assignment, defined=set(shell.user_ns))
                submission = _write_notebook(cells, Path(tmp) / f"{config['module']}.ipynb")
                saved = _named_notebook(notebook) if notebook else _saved_notebook(shell)
                intro = (f"Checked: the kernel's current definitions (its history, In [1] to In [{len(cells)}]; "
                         f"'code cell N' below is In [N]).")
            else:
                submission = _running_script()
                config = _choose(configs, assignment, defined=set(vars(sys.modules["__main__"])))
                saved, intro = None, f"Checked: {submission}."
            report = _judge(submission, config["id"], names, saved=saved, timeout=timeout, cwd=Path(tmp))
    except SelfCheckError as exc:
        _show({"text": f"dgm-grade: {exc}", "html": f'<p style="color:#b00">dgm-grade: {html.escape(str(exc))}</p>'},
              shell)
        return
    report["text"] = f"{intro}\n{report['text']}"
    report["html"] = f"<p>{html.escape(intro)}</p>{report['html']}"
    _show(report, shell)


def _ipython():
    """The running IPython shell, or None (a plain ``python`` process)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def _kernel_cells(shell) -> list[str]:
    """The raw source of every cell the kernel ran, In [1] on, without the one running now."""
    history = list(shell.history_manager.input_hist_raw)[1:]
    cells = history[:-1] if history else []
    if not any(c.strip() for c in cells):
        raise SelfCheckError("this kernel has run no code yet: run the cells that define your functions, then "
                             "check()")
    return cells


def _running_script() -> Path:
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main or not Path(main).is_file():
        raise SelfCheckError("check() grades a notebook's kernel or a running script; from a terminal use the "
                             "command instead (dgm-check-<assignment> FILE)")
    return Path(main)


def _write_notebook(cells: list[str], path: Path) -> Path:
    """A notebook (nbformat 4) with one code cell per history entry, numbered like In [N]."""
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "id": f"in-{i}", "metadata": {}, "execution_count": i, "outputs": [],
                     "source": source} for i, source in enumerate(cells, start=1)]}
    path.write_text(json.dumps(nb))
    return path


def _saved_notebook(shell) -> Path | None:
    """The notebook file this kernel belongs to, when Jupyter says (``__session__``, JPY_SESSION_NAME);
    Colab does not (its notebooks live in Drive), so there no comparison is made."""
    for candidate in (shell.user_ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(candidate, str) and candidate.endswith(".ipynb") and Path(candidate).is_file():
            return Path(candidate)
    return None


def _named_notebook(path: str | os.PathLike) -> Path:
    """The notebook ``check(notebook=...)`` names, which must be there."""
    if not Path(path).is_file():
        raise SelfCheckError(f"notebook={str(path)!r}: no such file (give the path of your saved .ipynb)")
    return Path(path)


def _configs() -> dict[str, dict]:
    """id -> config.toml of every assignment installed beside this grader."""
    configs = {}
    for path in sorted(ASSIGNMENTS.glob("*/config.toml")):
        try:
            configs[path.parent.name] = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue  # the judge reports a broken config with its reason
    if not configs:
        raise SelfCheckError(f"no assignment is installed in {ASSIGNMENTS}")
    return configs


def _choose(configs: dict[str, dict], assignment: str | None, *, defined: set[str]) -> dict:
    """The config of ``assignment``; else the only one; else the one whose functions are defined."""
    if assignment is not None:
        if assignment not in configs:
            raise SelfCheckError(f"unknown assignment '{assignment}' (known: {', '.join(configs)})")
        return configs[assignment]
    if len(configs) == 1:
        return next(iter(configs.values()))
    counts = {i: len(defined & set(c.get("functions", []))) for i, c in configs.items()}
    best = max(counts.values())
    chosen = [i for i, n in counts.items() if n == best]
    if best == 0 or len(chosen) > 1:
        raise SelfCheckError(f"cannot tell which assignment this is; pass check(assignment=...) with one of: "
                             f"{', '.join(configs)}")
    return configs[chosen[0]]


def _judge(submission: Path, assignment_id: str, names: Sequence[str], *, saved: Path | None,
           timeout: float | None, cwd: Path) -> dict:
    """Grade in a subprocess (this module with --run); its report as a dict: text, html, exit (the
    command's exit code) and passed (check id -> whether it passed)."""
    out = cwd / "report.json"
    command = [sys.executable, "-m", __name__, "--run", str(submission), "--assignment", assignment_id,
               "--report", str(out), "--sandbox", "process"]
    command += ["--only", ",".join(names)] if names else []
    command += ["--saved", str(saved)] if saved else []
    command += ["--timeout", str(timeout)] if timeout else []
    try:
        run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=JUDGE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SelfCheckError(f"the check took more than {JUDGE_TIMEOUT_S} s and was stopped") from None
    if not out.is_file():
        last = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
        raise SelfCheckError(f"the check could not run: {last}")
    return json.loads(out.read_text())


def _show(report: dict, shell) -> None:
    """HTML in a Jupyter cell (a kernel's shell), else the plain text."""
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import display

        display({"text/html": report["html"], "text/plain": report["text"]}, raw=True)
    else:
        print(report["text"])


# ---------------------------------------------------------------- the judge's side (a subprocess)


def run_check(submission: Path, *, console, assignment: str | None = None, sandbox: str = "auto", gpu: bool = False,
              seed: int | None = None, timeout: float | None = None, only: Sequence[str] | None = None,
              progress: bool = True):
    """Grade ``submission`` with the public checks and print the report on ``console`` (a line per
    check as it finishes when ``progress``). Returns (grade, exit code, stop): the code is 0 for
    full marks, 1 otherwise; ``stop.signum`` is the signal that stopped grading early, if one did."""
    from . import api, report
    from .stopping import stop_on_signals

    with stop_on_signals() as stop:
        grade = api.run_grading(submission=submission, assignment_id=assignment, hidden=False, sandbox=sandbox,
                                gpu=gpu, seed=seed, timeout=timeout, only=only,
                                progress=report.ProgressLines(console) if progress else None)
        report.print_report(console, grade)
    code = 0 if grade.score == grade.max_score and not grade.problem else 1
    return grade, code, stop


def saved_notebook_differs(graded: Path, saved: Path, functions: Sequence[str]) -> list[str]:
    """The graded functions whose definition in ``graded`` (the kernel's history) is not the one in
    the ``saved`` notebook: both converted as a submission is, then compared as syntax trees."""
    import ast

    from .notebook import NotebookError, convert_notebook

    def definitions(path: Path) -> dict[str, str]:
        module = ast.parse(convert_notebook(path.read_bytes(), path.name, functions).source)
        return {node.name: ast.dump(node) for node in module.body if isinstance(node, ast.FunctionDef)}

    try:
        now, saved_defs = definitions(graded), definitions(saved)
    except (NotebookError, SyntaxError, OSError):
        return list(functions)
    return [f for f in functions if now.get(f) != saved_defs.get(f)]


def _report_for_notebook(args: argparse.Namespace) -> int:
    """--run: grade, then write text and HTML reports to --report (JSON) for the kernel to show."""
    import io

    from . import api, report
    from .config import ConfigError
    from .sandbox.base import SandboxUnavailable

    text = io.StringIO()
    console = report.make_console(file=text)
    try:
        grade, code, _ = run_check(Path(args.submission), console=console, assignment=args.assignment,
                                   sandbox=args.sandbox, timeout=args.timeout, only=api.parse_only(args.only),
                                   progress=False)
    except (api.UsageError, ConfigError, SandboxUnavailable) as exc:
        message = f"dgm-grade: {exc}"
        Path(args.report).write_text(json.dumps({"text": message, "exit": 2, "html":
                                                 f'<p style="color:#b00">{html.escape(message)}</p>'}))
        return 2
    warnings = []
    if args.saved:
        differs = saved_notebook_differs(Path(args.submission), Path(args.saved), grade.assignment.config.functions)
        if differs:
            warnings.append(f"The saved notebook {Path(args.saved).name} differs from what the kernel runs in: "
                            f"{', '.join(differs)}. Save it (and run it top to bottom) before you submit: the grader "
                            "grades the saved file.")
    body = "".join(f"warning: {w}\n" for w in warnings) + text.getvalue()
    Path(args.report).write_text(json.dumps({"text": body, "html": report.html_report(grade, warnings=warnings),
                                             "exit": code, "passed": {r.check.id: r.passed for r in grade.results}}))
    return code


# ---------------------------------------------------------------- the student bundle's command


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Self-check: run the public checks on your "
                                     "submission and print a readable report (exit 0: full marks).")
    parser.add_argument("submission", help="your .py, .ipynb, folder or .zip")
    parser.add_argument("--assignment", "-a", help="assignment id (default: the one installed)")
    parser.add_argument("--only", help="comma-separated functions or check ids to run")
    parser.add_argument("--sandbox", default="auto", choices=("auto", "docker", "process"),
                        help="where your code runs (default: docker when its grading image is there, else process)")
    parser.add_argument("--seed", type=int, help="grading seed (default: the assignment's)")
    parser.add_argument("--timeout", type=float, help="seconds per call of one of your functions")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # check() in a notebook
    parser.add_argument("--report", help=argparse.SUPPRESS)
    parser.add_argument("--saved", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    """``dgm-check-<assignment> FILE``: the public checks; exit 0 full marks, 1 otherwise, 2 unusable command."""
    prog = Path(sys.argv[0]).name if argv is None else "dgm-check"
    args = _parser(prog).parse_args(argv)
    if args.run:
        sys.exit(_report_for_notebook(args))
    from . import api, report
    from .config import ConfigError
    from .sandbox.base import SandboxUnavailable

    console = report.make_console()
    try:
        assignment = args.assignment or _sole_assignment()
        grade, code, stop = run_check(Path(args.submission), console=console, assignment=assignment,
                                      sandbox=args.sandbox, seed=args.seed, timeout=args.timeout,
                                      only=api.parse_only(args.only))
    except (api.UsageError, ConfigError, SandboxUnavailable, SelfCheckError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        sys.exit(2)
    if stop.signum:
        print(f"{prog}: stopped by {stop.name}", file=sys.stderr)
        sys.exit(128 + stop.signum)
    if grade.grader_problem:  # the sandbox failed while grading: not a verdict on the student's code
        print(f"{prog}: grading did not finish: {grade.grader_problem}; check again", file=sys.stderr)
        sys.exit(3)
    sys.exit(code)


def _sole_assignment() -> str | None:
    """The id of the only assignment installed (the student bundle's), else None (found from the file)."""
    configs = _configs()
    return next(iter(configs)) if len(configs) == 1 else None

if __name__ == "__main__":
    main()
