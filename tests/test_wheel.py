"""dgm-grade as a TA installs it: `pip install` of a built wheel, used outside any checkout.

The wheel carries what the commands need besides Python code (the grading image's Dockerfile
and requirements, the Gradescope templates, the assignments' data files): built here, installed
into a fresh venv whose dependencies come from this one (a .pth), and run from an empty folder.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a venv holding the dgm-grade wheel built from this checkout (deps: this venv's)."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = (tmp / "dist").glob("dgm_grade-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    [site] = venv.glob("lib/python3*/site-packages")
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # its .pth files are not read
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "grader/deploy/docker/Dockerfile" in names and "grader/deploy/gradescope/setup.sh" in names
    return python


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "grader", *args], capture_output=True, text=True, timeout=900, cwd=cwd)


def test_the_installed_wheel_runs_outside_any_checkout(installed, tmp_path):
    where = subprocess.run([str(installed), "-c", "import grader, reference; print(grader.__file__, reference.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert str(ROOT) not in where.stdout and "site-packages" in where.stdout, where.stdout + where.stderr
    listed = run(installed, "list", cwd=tmp_path)
    assert listed.returncode == 0 and "hw2_vae" in listed.stdout, listed.stderr[-2000:]
    sub = tmp_path / "vae.py"
    shutil.copy(ROOT / "reference" / "vae.py", sub)
    graded = run(installed, "check", str(sub), "--assignment", "hw2_vae", cwd=tmp_path)
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-2000:]  # full public marks
    built = run(installed, "gradescope", "hw2_vae", "--out", str(tmp_path / "autograder.zip"), cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    with zipfile.ZipFile(tmp_path / "autograder.zip") as z:
        assert {"setup.sh", "run_autograder", "settings.env", "constraints.txt"} <= set(z.namelist())


@pytest.mark.docker
def test_the_installed_wheel_builds_the_grading_image(installed, tmp_path):
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker daemon (.ci/docker-setup.sh starts one)")
    if subprocess.run(["docker", "image", "inspect", "dgm-grade-base:offline"], capture_output=True).returncode != 0:
        pytest.skip("no offline base image (.ci/docker-setup.sh builds it)")
    tag = "dgm-grade:from-wheel-test"
    try:
        built = run(installed, "image", "build", "--offline", "--tag", tag, cwd=tmp_path)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        label = subprocess.run(["docker", "image", "inspect", "-f", '{{index .Config.Labels "dgm-grade.worker-digest"}}',
                                tag], capture_output=True, text=True)
        from grader.deploy.image import worker_digest
        assert label.stdout.strip() == worker_digest()  # the checkout's docker sandbox accepts it
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
