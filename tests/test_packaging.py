"""The environment student code sees is the same in both sandboxes."""
from __future__ import annotations

import re
import sys

import pytest

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=;\[ ]", line.strip(), maxsplit=1)[0].lower() for line in lines
            if line.strip() and not line.lstrip().startswith("#")}


def test_grading_image_and_process_sandbox_offer_the_same_packages():
    image = names((ROOT / "grader" / "deploy" / "docker" / "student-requirements.txt").read_text().splitlines())
    project = names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert image <= project, f"in the image but not in pyproject.toml: {image - project}"
    assert "torch" in project


def test_gradescope_constraints_pin_exactly_what_the_judge_runs_on_a_python_that_holds_them():
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    from grader.deploy.gradescope import constraints, python_floor

    pins = dict(line.split("==") for line in constraints().splitlines() if line and not line.startswith("#"))
    assert not any(";" in v for v in pins.values()), "a pin with a marker may not hold on Gradescope"
    assert pins["hypothesis"] == metadata.version("hypothesis")
    assert pins["torch"] == metadata.version("torch").split("+")[0]
    floor = python_floor()
    assert sys.version_info[:2] >= tuple(map(int, floor.split(".")))
    for name in pins:  # setup.sh's Python (>= floor) can install every pinned release
        requires = metadata.distribution(name).metadata.get("Requires-Python")
        if requires:
            assert SpecifierSet(requires).contains(f"{floor}.0", prereleases=True), (name, requires, floor)


def test_the_student_bundle_rewrites_imports_of_the_grader_into_its_own_package():
    from grader.deploy.student import rewrite_imports
    from grader.deploy.wheel import BuildError

    source = ("from grader.checks import Checks\nimport assignments as pkg\nimport assignments\n"
              "from .models import handout\nimport graderx\nfrom grader import compare  # kept comment\n")
    assert rewrite_imports(source, "dgm_grade.hw2_vae") == (
        "from dgm_grade.hw2_vae.grader.checks import Checks\nimport dgm_grade.hw2_vae.assignments as pkg\n"
        "from dgm_grade.hw2_vae import assignments\nfrom .models import handout\nimport graderx\n"
        "from dgm_grade.hw2_vae.grader import compare  # kept comment\n")
    for unfaithful in ("import grader.worker\n", "import grader, os\n"):
        with pytest.raises(BuildError, match="relative import"):
            rewrite_imports(unfaithful, "dgm_grade.hw2_vae")


def test_the_student_bundle_takes_the_public_files_and_refuses_one_importing_reference(tmp_path):
    from grader.deploy.student import public_files
    from grader.deploy.wheel import BuildError

    assert public_files(ROOT / "assignments" / "hw2_vae") == ["__init__.py", "checks_public.py", "config.toml",
                                                              "models.py"]
    (tmp_path / "checks_public.py").write_text("from .models import x\n")
    (tmp_path / "models.py").write_text("def f():\n    from reference import vae\n")
    with pytest.raises(BuildError, match="models.py imports reference"):
        public_files(tmp_path)
