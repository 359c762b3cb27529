"""Building wheels from copies of the installed packages: shared by gradescope.py and student.py.

Both deployment targets copy some of dgm-grade's packages (never all of them) into a
temporary source tree, add a pyproject.toml, and let pip build the wheel:

    copy_package(name, dest, keep=...)   a package folder, minus caches (and what ``keep`` refuses)
    judge_requirements()                 dgm-grade's own dependencies, as requirement strings
    project_toml(name, version, ...)     the top of a pyproject.toml: build system, [project], dependencies
    pip_wheel(src, out_dir)              ``pip wheel --no-deps src`` -> the .whl, copied into out_dir

Imports only the standard library.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Callable

DIST = "dgm-grade"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


class BuildError(Exception):
    """The wheel cannot be built here (one line says why)."""


def package_dir(name: str) -> Path:
    """The folder of an importable top-level package (``grader``, ``reference``, ``assignments``)."""
    module = __import__(name)
    return Path(module.__file__).resolve().parent


def project_root() -> Path | None:
    """The checkout dgm-grade runs from (its pyproject.toml beside grader/), or None when installed."""
    root = package_dir("grader").parent
    return root if (root / "pyproject.toml").is_file() else None


def copy_package(source: Path, dest: Path, *, keep: Callable[[Path], bool] | None = None) -> list[Path]:
    """Copy the package folder ``source`` to ``dest`` (caches left out); ``keep(relative_path)``
    decides file by file when given. Returns the copied files (relative to ``dest``)."""
    copied = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or path.suffix == ".pyc" or any(
                part == "__pycache__" or part.endswith(".egg-info") for part in relative.parts):
            continue
        if keep is not None and not keep(relative):
            continue
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest / relative)
        copied.append(relative)
    return copied


def judge_requirements() -> list[str]:
    """dgm-grade's own dependencies (no extras), as requirement strings."""
    try:
        return [r for r in metadata.requires(DIST) or [] if "extra ==" not in r]
    except metadata.PackageNotFoundError:
        raise BuildError("dgm-grade is not installed (pip install -e . in the checkout, or pip install the wheel)") from None


def project_toml(name: str, version: str, requirements: list[str], *, extra: str = "") -> str:
    """pyproject.toml's build system and [project] table (``extra``: more [project] keys, one per line)."""
    deps = ",\n".join(f"    {json.dumps(r)}" for r in requirements)
    return f'''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
{extra}requires-python = ">=3.10"
dependencies = [
{deps}
]
'''


def pip_wheel(src: Path, out_dir: Path) -> Path:
    """Build the wheel of the source tree ``src`` (a pyproject.toml at its root) into ``out_dir``."""
    with tempfile.TemporaryDirectory(prefix="dgm-wheel-out-") as tmp:
        wheels = Path(tmp)
        isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
        run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q",
                              "-w", str(wheels), str(src)], capture_output=True, text=True)
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["pip wheel failed"])[-1]
            raise BuildError(f"building the wheel failed: {last} (needs setuptools in this environment)")
        [wheel] = wheels.glob("*.whl")
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(wheel, out_dir / wheel.name))
