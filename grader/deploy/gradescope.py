"""Gradescope: the autograder zip, and what run_autograder reads from Gradescope.

``build_autograder(assignment_id, out)`` writes the zip Gradescope expects:

    setup.sh          run once as root when Gradescope builds the image (templates in gradescope/)
    run_autograder    run as root for every submission
    settings.env      where setup.sh gets torch (the CPU wheel index) and the rest
    constraints.txt   every dependency of the judge pinned at the version installed here
    dgm_grade-*.whl   dgm-grade with this assignment only: its checks, models and reference module

The wheel is built from a copy of the installed (or checked-out) packages
with every other assignment and reference module left out, so neither
Gradescope's image nor a student who somehow reads it learns about the
other homework.

``read_metadata`` turns /autograder/submission_metadata.json into the ids
results.json records and the count a daily submission limit needs.
"""
from __future__ import annotations

import json
import re
import shutil
import string
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path

from .wheel import (DIST, IGNORE, BuildError, copy_package, judge_requirements, package_dir, pip_wheel, project_root,
                    project_toml)

TEMPLATES = Path(__file__).resolve().parent / "gradescope"
DEFAULT_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
DEFAULT_PYPI_INDEX = "https://pypi.org/simple"
PACKAGES = ("grader", "reference", "assignments")
METADATA_MAX_BYTES = 64 << 20


# ---------------------------------------------------------------- submission metadata


@dataclass
class Metadata:
    """What results.json and the daily limit need from submission_metadata.json (ids, never names or emails)."""

    submission_id: int | str | None = None
    user_ids: list[int | str] = field(default_factory=list)
    created_at: datetime | None = None
    previous: list[tuple[datetime | None, float | None]] = field(default_factory=list)  # (time, score)
    problem: str = ""  # why the file could not be (fully) read

    def extra_data(self) -> dict:
        data = {"submission_id": self.submission_id, "user_ids": self.user_ids,
                "previous_submissions": len(self.previous)}
        return {"gradescope": data | ({"metadata_problem": self.problem} if self.problem else {})}

    def submissions_in_last_day(self) -> int:
        """Previous submissions within 24 hours before this one (one without a readable time counts)."""
        now = self.created_at or datetime.now().astimezone()
        return sum(1 for when, _ in self.previous if when is None or now - when < timedelta(days=1))

    def last_score(self) -> float:
        """The score of the latest previous submission (0 when there is none)."""
        scored = [(w or datetime.min.astimezone(), s) for w, s in self.previous if s is not None]
        return max(scored, key=lambda p: p[0])[1] if scored else 0.0


def _id(value) -> int | str | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else (
        value[:100] if isinstance(value, str) else None)


def _time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return None
    return t if t.tzinfo else t.astimezone()


def read_metadata(path: Path) -> Metadata:
    """Read Gradescope's submission_metadata.json; never raises (``problem`` says what was wrong)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(METADATA_MAX_BYTES + 1)
        if len(raw) > METADATA_MAX_BYTES:
            return Metadata(problem="larger than 64 MB")
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        return Metadata(problem=f"{type(exc).__name__}: {str(exc)[:200]}")
    if not isinstance(data, dict):
        return Metadata(problem="not a JSON object")
    users = data.get("users") if isinstance(data.get("users"), list) else []
    previous = []
    for p in data.get("previous_submissions") or []:
        if isinstance(p, dict):
            score = p.get("score")
            score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
            previous.append((_time(p.get("submission_time")), score))
    return Metadata(
        submission_id=_id(data.get("id")),
        user_ids=[i for i in (_id(u.get("id")) for u in users if isinstance(u, dict)) if i is not None],
        created_at=_time(data.get("created_at")),
        previous=previous,
    )


# ---------------------------------------------------------------- the zip


def _reference_modules(assignment_dir: Path, module: str) -> set[str]:
    names = {module}
    for py in assignment_dir.rglob("*.py"):
        names |= set(re.findall(r"^\s*from reference import (\w+)", py.read_text(), flags=re.M))
        names |= set(re.findall(r"^\s*(?:from|import) reference\.(\w+)", py.read_text(), flags=re.M))
    return names


def _pyproject(version: str) -> str:
    """A pyproject.toml for the wheel when dgm-grade runs from a wheel rather than a checkout."""
    return project_toml(DIST, version, judge_requirements()) + '''
[project.scripts]
dgm-grade = "grader.cli:main"

[tool.setuptools.packages.find]
include = ["grader*", "reference*", "assignments*"]

[tool.setuptools.package-data]
"*" = ["*.toml", "*.ipynb", "*.txt", "*.html", "*.j2", "alternatives/*.py", "degenerate/*.py"]
"grader.deploy" = ["docker/*", "gradescope/*"]
'''


def build_wheel(assignment_id: str, out_dir: Path) -> Path:
    """A wheel of dgm-grade holding ``assignment_id`` only (and its reference module)."""
    from ..assignment import ASSIGNMENTS_DIR, load_assignment

    config = load_assignment(assignment_id).config  # UnknownAssignment / ConfigError for the CLI
    with tempfile.TemporaryDirectory(prefix="dgm-wheel-") as tmp:
        src = Path(tmp) / "src"
        copy_package(package_dir("grader"), src / "grader")
        (src / "assignments").mkdir()
        shutil.copy(ASSIGNMENTS_DIR / "__init__.py", src / "assignments" / "__init__.py")
        shutil.copytree(ASSIGNMENTS_DIR / assignment_id, src / "assignments" / assignment_id, ignore=IGNORE)
        reference = package_dir("reference")
        (src / "reference").mkdir()
        shutil.copy(reference / "__init__.py", src / "reference" / "__init__.py")
        for name in sorted(_reference_modules(ASSIGNMENTS_DIR / assignment_id, config.module)):
            shutil.copy(reference / f"{name}.py", src / "reference" / f"{name}.py")
        root = project_root()
        if root is not None:
            shutil.copy(root / "pyproject.toml", src / "pyproject.toml")
            shutil.copy(root / "README.md", src / "README.md")
        else:
            (src / "pyproject.toml").write_text(_pyproject(metadata.version(DIST)))
        return pip_wheel(src, out_dir)


def _pins() -> dict[str, tuple[str, str]]:
    """Every distribution the judge needs (normalised name -> (version, Requires-Python)), as installed here.

    Local version labels are dropped: torch 2.13.0+cpu pins torch==2.13.0, which the CPU wheel
    index satisfies.
    """
    from packaging.requirements import Requirement

    env = {"extra": ""}
    pins: dict[str, tuple[str, str]] = {}
    todo = [Requirement(r) for r in judge_requirements()]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in pins:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not needed on this Python (a marker pip evaluated differently)
        pins[name] = (dist.version.split("+")[0], dist.metadata.get("Requires-Python") or "")
        todo += [Requirement(r) for r in dist.requires or [] if "extra ==" not in r]
    return pins


def constraints() -> str:
    """constraints.txt: every distribution the judge needs, at exactly the version installed here.

    No markers: on Gradescope the judge runs the same releases as here (hypothesis above all),
    on a Python at least python_floor(), which setup.sh installs when the image's python3 is older.
    """
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    header = (f"# Every dependency of the dgm-grade judge, at the versions it was built with (Python {here}).\n"
              "# hypothesis above all: another version draws other examples from the same seed.\n"
              f"# Needs Python >= {python_floor()} (setup.sh installs it where python3 is older).\n")
    return header + "\n".join(f"{name}=={version}" for name, (version, _) in sorted(_pins().items())) + "\n"


def python_floor() -> str:
    """The oldest Python (major.minor) that every pinned release supports: the largest `>=` bound
    in their Requires-Python ("3.11" when hypothesis needs >= 3.11). A patch-level bound
    (`>=3.11.4`) asks for the next minor, which setup.sh can then check by major.minor alone."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    floor = Version("3.8")
    for _, requires_python in _pins().values():
        for spec in SpecifierSet(requires_python) if requires_python else ():
            if spec.operator in (">=", ">") and "*" not in spec.version:
                floor = max(floor, Version(spec.version))
    if floor.micro:  # a patch-level floor: ask for the next minor, which surely satisfies it
        floor = Version(f"{floor.major}.{floor.minor + 1}")
    return f"{floor.major}.{floor.minor}"


def render(template: str, **values: str) -> str:
    """A file of gradescope/ with its ${NAME} placeholders filled (settings.env; the scripts are copied as they are)."""
    return string.Template((TEMPLATES / template).read_text()).substitute(values)


def build_autograder(assignment_id: str, out: Path, *, torch_index: str = DEFAULT_TORCH_INDEX,
                     pypi_index: str = DEFAULT_PYPI_INDEX) -> Path:
    """Write the Gradescope autograder zip for ``assignment_id`` to ``out``; returns ``out``."""
    from ..assignment import load_assignment

    assignment = load_assignment(assignment_id)
    torch_version = metadata.version("torch").split("+")[0]
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="dgm-gradescope-") as tmp:
        wheel = build_wheel(assignment_id, Path(tmp))
        files = {
            "setup.sh": (TEMPLATES / "setup.sh").read_text(),
            "run_autograder": (TEMPLATES / "run_autograder").read_text(),
            "settings.env": render("settings.env", ASSIGNMENT=assignment_id, WHEEL=wheel.name,
                                   TORCH_VERSION=torch_version, TORCH_INDEX=torch_index, PYPI_INDEX=pypi_index,
                                   MODULE=assignment.config.module, PYTHON=python_floor()),
            "constraints.txt": constraints(),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
            for name, text in files.items():
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = (0o755 if name in ("setup.sh", "run_autograder") else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, text)
            z.write(wheel, wheel.name)
        partial.replace(out)
    return out


# ---------------------------------------------------------------- run_autograder's own steps


def reserve(out: Path, assignment_id: str) -> None:
    """Before any student code runs: a root-owned results.json saying grading did not finish,
    holding the disk space the real one will need."""
    from ..results import failure_results, reserve_results

    reserve_results(out, failure_results(
        "Grading did not finish: the autograder stopped before it could write your results. This is not a "
        "score for your code; please tell your TA (they can see the autograder's log).",
        extra={"assignment": assignment_id, "finished": False}))


def failed(out: Path, assignment_id: str, status: int) -> None:
    """After `dgm-grade grade` failed: end every process a worker left, then say so in results.json."""
    from ..results import failure_results, write_results
    from ..sandbox.process import UID_BASE, UID_COUNT, kill_uid, uids_in_use

    for uid in uids_in_use() & set(range(UID_BASE, UID_BASE + UID_COUNT)):
        kill_uid(uid)
    write_results(failure_results(
        f"Grading failed (the grader exited with status {status}). This is not a score for your code: your TA "
        "has been given the details in the autograder's log; please tell them.",
        extra={"assignment": assignment_id, "finished": False, "grader_exit_status": status}), out)


def main(argv: list[str] | None = None) -> None:
    """``python -m grader.deploy.gradescope reserve|failed OUT ASSIGNMENT [STATUS]`` (run_autograder's steps)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 3 and args[0] == "reserve":
        reserve(Path(args[1]), args[2])
    elif len(args) >= 4 and args[0] == "failed":
        failed(Path(args[1]), args[2], int(args[3]))
    else:
        raise SystemExit("usage: python -m grader.deploy.gradescope reserve OUT ASSIGNMENT | failed OUT ASSIGNMENT STATUS")


if __name__ == "__main__":
    main()
