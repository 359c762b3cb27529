"""How long grading takes, as students and TAs run it: whole processes, medians, side by side.

    .venv/bin/python benchmarks/speed.py [--quick] [--reps N] [--assignments hw2_vae,...] [--baseline REV]

Prints a table and writes benchmarks/results.md. Every case is a whole process
(or, for ``--watch``, the time from a save to the new score line), repeated
``--reps`` times; the cases take turns (round robin), so that load from other
work on the machine falls on all of them alike. Figures are medians, with the
spread (min-max). Peak memory: the largest sum of resident memory of the
command and every process under it (judge + worker), sampled every 20 ms; a
Docker worker is not under it (the daemon starts it), so the docker rows count
the judge only.

Cases:
- fixed cost: ``check`` of an empty hw2 file against ``python -c "import torch"``;
- per assignment, ``grade`` of the reference with ``--sandbox process``,
  ``--sandbox docker`` and ``--sandbox none`` (the same worker as a plain
  subprocess, started the same way: the floor for isolation);
- ``check --watch --only kl_normal``: a re-check after a save, the next
  worker waiting (the save comes ``--edit-seconds`` after the last run, as a
  student's edit would);
- Otter-Grader 7.0.0 (``otter run``, benchmarks/otter_hw2/: twelve plain
  assertions on kl_normal, sample_gaussian, log_bernoulli_with_logits,
  log_mean_exp) against ``grade --only`` those four (cold) and a ``--watch``
  re-check of them (warm), on the same correct submission. Otter runs from
  its own virtual environment (benchmarks/.otter-venv, made on first use:
  ``pip install otter-grader==7.0.0 ipykernel torch==<ours>``), never from ours;
- ``batch`` of 8 generated hw2 students with two workers, the next child started
  early (the default) and not (``api.run_batch(warm_start=False)``);
- ``--baseline REV``: the empty check and the hw2 grade at that git revision
  too (its tree, exported to benchmarks/.work/, run by our interpreter).

``--quick``: hw2 only, 3 repetitions, no baseline unless asked.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
OTTER_VENV = ROOT / "benchmarks" / ".otter-venv"
OTTER_DIR = ROOT / "benchmarks" / "otter_hw2"
RESULTS = ROOT / "benchmarks" / "results.md"
PYTHON = sys.executable
ASSIGNMENTS = ("hw1_foundations", "hw2_vae", "hw3_flows", "hw4_gan", "hw5_diffusion", "hw6_score")
FULL_MARKS = r": (\S+) / \1 -> "  # grade's last line for a submission with full marks
FOUR = "kl_normal,sample_gaussian,log_bernoulli_with_logits,log_mean_exp"


# ---------------------------------------------------------------- measuring one process


def run_measured(command: list[str], *, cwd: Path, env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak MB of the process tree, output) of one run; raises if it fails to start."""
    started = time.monotonic()
    proc = psutil.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            total = 0
            try:
                for p in [proc, *proc.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                continue
            peak = max(peak, total)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    return wall, peak / (1 << 20), out.decode(errors="replace")


@dataclass
class Case:
    """One row: a command run as a whole process (``run``) or a custom measurement (``measure``)."""

    label: str
    group: str
    command: list[str] | None = None
    cwd: Path = ROOT
    env: dict | None = None
    measure: object = None  # a callable returning (seconds, peak MB or None, output)
    expect: str = ""  # a regex the output must match (a run without it is a failure, not a figure)
    walls: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    failure: str = ""

    def once(self) -> None:
        if self.failure:
            return
        if self.measure is not None:
            wall, peak, out = self.measure()
        else:
            wall, peak, out = run_measured(self.command, cwd=self.cwd, env=self.env)
        if self.expect and not re.search(self.expect, out):
            self.failure = f"output lacks {self.expect!r}: ...{out[-600:]}"
            return
        self.walls.append(wall)
        if peak is not None:
            self.peaks.append(peak)

    @property
    def median(self) -> float:
        return statistics.median(self.walls) if self.walls else float("nan")

    def cells(self) -> list[str]:
        if self.failure:
            return [self.label, "failed", "", ""]
        spread = f"{min(self.walls):.2f}-{max(self.walls):.2f}" if len(self.walls) > 1 else ""
        peak = f"{statistics.median(self.peaks):.0f}" if self.peaks else ""
        return [self.label, f"{self.median:.2f}", spread, peak]


# ---------------------------------------------------------------- a --watch session


class WatchSession:
    """``dgm-grade check FILE --watch`` kept running; ``recheck`` saves the file and times the re-check
    (from the save to the line after the new score)."""

    def __init__(self, path: Path, only: str, *, edit_seconds: float, sandbox: str = "process") -> None:
        self.path, self.edit_seconds = path, edit_seconds
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "dgm-grade") if (ROOT / ".venv" / "bin" / "dgm-grade").exists() else
             "dgm-grade", "check", path.name, "--watch", "--only", only, "--sandbox", sandbox],
            cwd=path.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.last = self.until("watching")

    def until(self, marker: str) -> str:
        lines = []
        for line in self.proc.stdout:
            lines.append(line)
            if marker in line:
                return "".join(lines)
        raise RuntimeError(f"--watch ended: {''.join(lines)[-800:]}")

    def recheck(self) -> tuple[float, None, str]:
        time.sleep(self.edit_seconds)  # the student edits; the next worker starts meanwhile
        text = self.path.read_text()
        self.path.write_text(text + "\n")
        saved = time.monotonic()
        out = self.until("watching")
        return time.monotonic() - saved, None, out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---------------------------------------------------------------- Otter


def otter_ready() -> Path | None:
    """benchmarks/.otter-venv/bin/otter, installing it the first time; None when it cannot be installed."""
    otter = OTTER_VENV / "bin" / "otter"
    if not otter.exists():
        import torch

        version = torch.__version__.split("+")[0]
        print(f"installing otter-grader 7.0.0 and torch {version} into {OTTER_VENV} (once)", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(OTTER_VENV)], check=True)
            subprocess.run([str(OTTER_VENV / "bin" / "pip"), "install", "-q", "otter-grader==7.0.0", "ipykernel",
                            f"torch=={version}"], check=True)  # (otter runs the submission in a Jupyter kernel)
        except subprocess.CalledProcessError:
            return None
    return otter


def otter_case(otter: Path, submission_dir: Path) -> Case:
    """``otter run`` of the correct submission against the autograder zip built from otter_hw2/tests."""
    build = submission_dir / "otter-build"
    shutil.rmtree(build, ignore_errors=True)
    shutil.copytree(OTTER_DIR, build)
    subprocess.run([str(otter), "generate", "-t", "tests", "-o", "autograder.zip", "--no-config", "--no-requirements",
                    "--no-environment"], cwd=build, check=True, capture_output=True)
    out = submission_dir / "otter-out"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{OTTER_VENV / 'bin'}:{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    return Case("otter run (12 assertions, 4 functions)", "otter", [str(otter), "run", "-a", str(build / "autograder.zip"),
                "-o", str(out), "--no-logo", "vae.py"], cwd=submission_dir, env=env,
                expect=r"Total Score: 12\.000 / 12\.000")


# ---------------------------------------------------------------- the table


def reference_dir(assignment: str) -> Path:
    """A folder holding the reference as the student's module (reference/<module>.py -> <module>.py)."""
    module = assignment.split("_", 1)[1]
    folder = WORK / "submissions" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "reference" / f"{module}.py", folder / f"{module}.py")
    return folder


def export_revision(rev: str) -> Path:
    """The tree of ``rev``, exported to benchmarks/.work/baseline-<rev> (its grader runs with our interpreter)."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    target = WORK / f"baseline-{sha}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


BENCH_IMAGE = "dgm-grade:bench"


def docker_image() -> str | None:
    """A grading image holding this checkout's worker (built offline as dgm-grade:bench, so the image
    other work uses is left alone), or None when Docker cannot build or run one here."""
    try:
        built = subprocess.run([PYTHON, "-m", "grader", "image", "build", "--offline", "--tag", BENCH_IMAGE],
                               cwd=ROOT, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if built.returncode != 0:
        print(f"no docker rows: {(built.stderr or built.stdout).strip()[-300:]}", flush=True)
        return None
    return BENCH_IMAGE


def build_cases(args, sessions: list[WatchSession]) -> list[Case]:
    """The cases, in the order they take turns; the --watch sessions it starts go into ``sessions``."""
    dgm = [PYTHON, "-m", "grader"]
    image = docker_image()
    unsafe = {**os.environ, "DGM_UNSAFE_NO_SANDBOX": "1", "DGM_GRADING_IMAGE": image or ""}
    empty = WORK / "submissions" / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    (empty / "vae.py").write_text("")
    cases = [
        Case('python -c "import torch"', "fixed cost", [PYTHON, "-c", "import torch"]),
        Case("check: empty hw2 file (process)", "fixed cost", [*dgm, "check", "vae.py", "-a", "hw2_vae", "--sandbox",
             "process"], cwd=empty, expect=r"Score: 0 / "),
    ]
    for assignment in args.assignments:
        folder = reference_dir(assignment)
        module = assignment.split("_", 1)[1]
        kinds = ["none", "process"] + (["docker"] if image else [])
        for kind in kinds:
            cases.append(Case(f"{assignment}: grade reference, --sandbox {kind}", assignment,
                              [*dgm, "grade", f"{module}.py", "-a", assignment, "--sandbox", kind, "--quiet", "--out",
                               str(WORK / f"{assignment}-{kind}.json")], cwd=folder, env=unsafe, expect=FULL_MARKS))
    hw2 = reference_dir("hw2_vae")
    if args.baseline:
        base = export_revision(args.baseline)
        env = {**os.environ, "PYTHONPATH": str(base)}
        cases.append(Case(f"baseline {args.baseline}: check empty hw2 file", "fixed cost",
                          [*dgm, "check", "vae.py", "-a", "hw2_vae", "--sandbox", "process"], cwd=empty, env=env,
                          expect=r"Score: 0 / "))
        cases.append(Case(f"baseline {args.baseline}: hw2_vae grade reference, process", "hw2_vae",
                          [*dgm, "grade", "vae.py", "-a", "hw2_vae", "--sandbox", "process", "--quiet", "--out",
                           str(WORK / "baseline.json")], cwd=hw2, env=env, expect=FULL_MARKS))
    cases += batch_cases(args)
    cases.append(Case("grade --only the four (cold, process)", "otter",
                      [*dgm, "grade", "vae.py", "-a", "hw2_vae", "--sandbox", "process", "--only", FOUR, "--quiet",
                       "--out", str(WORK / "four.json")], cwd=hw2, expect=FULL_MARKS))
    otter = None if args.no_otter else otter_ready()
    if otter is not None:
        cases.append(otter_case(otter, hw2))
    for only, label, group in (("kl_normal", "check --watch --only kl_normal: re-check after a save", "watch"),
                               (FOUR, "check --watch --only the four: re-check after a save (warm)", "otter")):
        folder = WORK / "submissions" / f"watch-{len(sessions)}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "reference" / "vae.py", folder / "vae.py")
        session = WatchSession(folder / "vae.py", only, edit_seconds=args.edit_seconds)
        sessions.append(session)  # (closed by main, whatever happens next)
        cases.append(Case(label, group, measure=session.recheck, expect=r"Score: (\S+) / \1 "))
    return cases


BATCH_STUDENTS = 8


def batch_cases(args) -> list[Case]:
    """``batch`` of a generated hw2 class (examples/make_class.py: correct work in each form, mutants, a
    blank; the hanging and crashing students left out, so the figures are grading, not timeouts), two
    workers, with the next child started early (the default) and without (``warm_start=False``)."""
    if "hw2_vae" not in args.assignments:
        return []
    sys.path.insert(0, str(ROOT))
    from examples.make_class import make_class

    folder = WORK / "class"
    shutil.rmtree(folder, ignore_errors=True)
    kinds = make_class(folder, 40)
    keep = [s for s, k in kinds.items() if k in ("correct", "correct notebook", "correct folder", "correct zip",
                                                 "mutant", "blank")][:BATCH_STUDENTS]
    for path in folder.iterdir():
        if not any(path.name.startswith(s) for s in keep):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    cases = []
    for warm in (True, False):
        out = WORK / f"batch-{'warm' if warm else 'cold'}"
        code = ("import shutil, sys; from grader import api; shutil.rmtree(sys.argv[2], ignore_errors=True); "
                "s = api.run_batch(folder=sys.argv[1], out=sys.argv[2], assignment_id='hw2_vae', sandbox='process', "
                f"workers=2, warm_start={warm}); print('graded', len(s.graded))")
        cases.append(Case(f"batch of {len(keep)} hw2 students, 2 workers, next child {'warm' if warm else 'cold'}",
                          "batch", [PYTHON, "-c", code, str(folder), str(out)], expect=rf"graded {len(keep)}\b"))
    return cases


def ratio(cases: dict[str, Case], a: str, b: str) -> float:
    return cases[a].median / cases[b].median if a in cases and b in cases else float("nan")


def report(cases: list[Case], args) -> str:
    by = {c.label: c for c in cases}
    head = ["case", "median s", "min-max s", "peak MB (judge+worker)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cases:
        lines.append("| " + " | ".join(c.cells()) + " |")
    targets = []
    t = ratio(by, "check: empty hw2 file (process)", 'python -c "import torch"')
    targets.append(f"- empty-submission `check` / `import torch`: {t:.2f}x (target 1.5x)")
    w = by.get("check --watch --only kl_normal: re-check after a save")
    if w and w.walls:
        targets.append(f"- `--watch` re-check of kl_normal: {w.median:.2f} s (target < 1 s)")
    for assignment in args.assignments:
        base = f"{assignment}: grade reference, --sandbox none"
        for kind, goal in (("process", 1.1), ("docker", 1.5)):
            r = ratio(by, f"{assignment}: grade reference, --sandbox {kind}", base)
            if r == r:
                targets.append(f"- {assignment}: {kind} / unisolated: {r:.2f}x (target {goal}x)")
    o = by.get("otter run (12 assertions, 4 functions)")
    if o and o.walls:
        cold = by["grade --only the four (cold, process)"].median
        warm = by["check --watch --only the four: re-check after a save (warm)"].median
        targets.append(f"- cold `grade --only` the four: {cold:.2f} s vs otter {o.median:.2f} s: {cold / o.median:.2f}x "
                       f"(target <= 1x); warm `--watch` re-check: {warm:.2f} s, {warm / o.median:.2f}x (target <= 0.5x)")
    hw2 = by.get("hw2_vae: grade reference, --sandbox process")
    if hw2 and hw2.walls:
        base = [c for c in cases if c.label.startswith("baseline") and "grade" in c.label]
        versus = f"; baseline {base[0].median:.2f} s: {hw2.median / base[0].median:.2f}x" if base and base[0].walls else ""
        targets.append(f"- full hw2 `grade` (process): {hw2.median:.2f} s (target <= 5.8 s, half of the issue's 11.6 s"
                       f"{versus})")
    r = ratio(by, *[c.label for c in cases if c.group == "batch"]) if sum(c.group == "batch" for c in cases) == 2 \
        else float("nan")
    if r == r:
        targets.append(f"- batch, next child warm / cold: {r:.2f}x (no target; the issue asks for warm workers in batch)")
    load = os.getloadavg()
    return "\n".join([
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
        f"(load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}), {args.reps} repetitions each, "
        f"round robin; `.venv/bin/python benchmarks/speed.py {' '.join(sys.argv[1:])}`.", "",
        *lines, "", "Targets:", *targets, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="hw2 only, 3 repetitions")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per case (default 5, 3 with --quick)")
    parser.add_argument("--assignments", default=None, help="comma-separated (default: all; hw2_vae with --quick)")
    parser.add_argument("--baseline", default=None, help="also time the empty check and hw2 grade at this git revision")
    parser.add_argument("--edit-seconds", type=float, default=10.0, help="time between a --watch run and the next save")
    parser.add_argument("--no-otter", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.reps = args.reps or (3 if args.quick else 5)
    args.assignments = (args.assignments.split(",") if args.assignments else
                        ["hw2_vae"] if args.quick else list(ASSIGNMENTS))
    sessions: list[WatchSession] = []
    try:
        cases = build_cases(args, sessions)
        for rep in range(args.reps):
            for c in cases:
                c.once()
                print(f"[{rep + 1}/{args.reps}] {c.label}: " + (c.failure[:200] if c.failure else f"{c.walls[-1]:.2f} s"),
                      flush=True)
    finally:
        for s in sessions:
            s.close()
    text = report(cases, args)
    print("\n" + text)
    args.out.write_text("# Speed: measured\n\n" + text + "\n" + NOTES)
    print(f"wrote {args.out}")


NOTES = """
How to read it: medians of whole processes (a `--watch` row: from the save to the new score
line), measured side by side on a shared machine, so compare rows of the same table, not
tables of different runs. The analysis of where the time goes (profiles) and of the targets
missed is in benchmarks/analysis.md.
"""

if __name__ == "__main__":
    main()
