"""The environment student code sees is the same in both sandboxes."""
from __future__ import annotations

import re
import sys

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
