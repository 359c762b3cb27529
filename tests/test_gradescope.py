"""A simulated Gradescope, for real: the autograder zip built by `dgm-grade gradescope`, set up and
run in a container laid out like Gradescope's, with its default limits.

The container comes from the bare offline base (dgm-grade-base:rootfs: Debian bookworm minbase
with python3, no torch; .ci/docker-setup.sh makes it), with Docker's default capabilities and
seccomp profile (no --privileged), --memory 768m --cpus 0.5 and no network. setup.sh runs as
root with pip pointed at a wheelhouse prepared on the host beforehand (PIP_NO_INDEX, PIP_FIND_LINKS;
built once and cached by the hash of constraints.txt); the set-up container is committed as an
image once per session; then run_autograder grades each upload in a fresh container of it.

What only the simulation bounds: /autograder, /tmp, /var/tmp and /dev/shm are small tmpfs mounts,
so an upload that fills the disk fills those and never the CI machine's disk.

    pytest -m docker tests/test_gradescope.py                     hw2_vae (regular CI)
    pytest -m docker tests/test_gradescope.py --gradescope-all    all six assignments, and
                                                                  docs/gradescope.md's table refreshed
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from grader.assignment import assignment_ids, load_assignment

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BASE = "dgm-grade-base:rootfs"
LIMITS = ["--memory", "768m", "--memory-swap", "768m", "--cpus", "0.5", "--network", "none"]
SCRATCH = ["--tmpfs", "/tmp:size=16m", "--tmpfs", "/var/tmp:size=8m", "--shm-size", "8m"]
AUTOGRADER_MB = 48  # the "disk" of /autograder in a run
CACHE = Path(os.environ.get("DGM_CACHE_DIR", "/var/cache/dgm-grade"))
DOC = ROOT / "docs" / "gradescope.md"


def _docker(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    # errors="replace": the log's tail (tail -c) may cut a UTF-8 character in two; results.json is read whole
    return subprocess.run(["docker", *args], capture_output=True, encoding="utf-8", errors="replace", timeout=timeout,
                          check=check)


def _unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed (.ci/docker-setup.sh installs it)"
    try:
        if _docker("info", timeout=20, check=False).returncode != 0:
            return "the Docker daemon is not reachable (.ci/docker-setup.sh starts it)"
        if _docker("image", "inspect", BASE, timeout=20, check=False).returncode != 0:
            return f"the bare base image {BASE} is missing (.ci/docker-setup.sh builds it)"
    except subprocess.TimeoutExpired:
        return "the Docker daemon does not answer"
    return None


_REASON = _unavailable()
if _REASON and os.environ.get("DGM_REQUIRE_DOCKER") == "1":
    raise RuntimeError(f"DGM_REQUIRE_DOCKER=1 but the simulated Gradescope cannot run: {_REASON}")
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)


# ---------------------------------------------------------------- building and setting up


def build_zip(assignment_id: str, out_dir: Path) -> Path:
    """`dgm-grade gradescope ID --out autograder.zip`, as a TA runs it."""
    out = out_dir / "autograder.zip"
    run = subprocess.run([sys.executable, "-m", "grader", "gradescope", assignment_id, "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=out_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def wheelhouse(zip_path: Path, work: Path) -> Path:
    """Wheels of everything setup.sh installs, made with the host's pip (its local index and wheel
    folder), cached by the hash of constraints.txt and the Python version."""
    import zipfile

    src = work / "zip"
    zipfile.ZipFile(zip_path).extractall(src)
    constraints = (src / "constraints.txt").read_bytes()
    key = hashlib.sha256(constraints + sys.version.encode()).hexdigest()[:16]
    house = CACHE / f"wheelhouse-{key}"
    if not (house / ".complete").is_file():
        partial = CACHE / f".wheelhouse-{key}-{uuid.uuid4().hex[:6]}"
        partial.mkdir(parents=True)
        [wheel] = src.glob("*.whl")
        run = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(partial), "-c",
                              str(src / "constraints.txt"), str(wheel), "torch==2.13.0"],
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
        for ours in partial.glob("dgm_grade-*.whl"):
            ours.unlink()  # the zip brings its own
        (partial / ".complete").touch()
        try:
            partial.rename(house)
        except OSError:  # another session made it meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return house


SETUP = r"""
set -e
mkdir -p /autograder/source /autograder/submission /autograder/results
python3 -m zipfile -e /host/autograder.zip /autograder/source
cp /autograder/source/run_autograder /autograder/run_autograder && chmod 755 /autograder/run_autograder
start=$(date +%s.%N)
bash /autograder/source/setup.sh
end=$(date +%s.%N)
echo "SETUP_SECONDS $(python3 -c "print(round($end - $start, 1))")"
# what a run's tmpfs /autograder starts from (root-only, like /autograder/source)
mkdir -m 700 /autograder.image && cp -a /autograder/. /autograder.image/
"""


def zip_key(zip_path: Path) -> str:
    """A hash of what the zip holds (the wheel by its members: its own zip carries build times)."""
    import io
    import zipfile

    h = hashlib.sha256()
    with zipfile.ZipFile(zip_path) as z:
        for name in sorted(z.namelist()):
            data = z.read(name)
            if name.endswith(".whl"):
                with zipfile.ZipFile(io.BytesIO(data)) as w:
                    data = b"".join(n.encode() + w.read(n) for n in sorted(w.namelist()) if not n.endswith("RECORD"))
            h.update(name.encode() + b"\0" + data)
    return h.hexdigest()[:12]


def set_up(assignment_id: str, tmp: Path, *, limited: bool) -> tuple[str, float | None]:
    """The committed image of a container in which setup.sh ran, and setup.sh's wall time.

    Unlimited (regular CI): an image already set up from the same zip contents is reused
    (seconds None). Limited (the measured run): always set up afresh.
    """
    zip_path = build_zip(assignment_id, tmp)
    name = f"dgm-gs-setup-{uuid.uuid4().hex[:8]}"
    image = f"dgm-grade-gradescope-sim:{assignment_id}-{zip_key(zip_path)}" + ("-measured" if limited else "")
    if not limited and _docker("image", "inspect", image, check=False).returncode == 0:
        return image, None
    house = wheelhouse(zip_path, tmp)
    limits = LIMITS if limited else ["--network", "none"]
    try:
        run = _docker("run", "--name", name, *limits, "-v", f"{zip_path}:/host/autograder.zip:ro",
                      "-v", f"{house}:/wheelhouse:ro", "-e", "PIP_NO_INDEX=1", "-e", "PIP_FIND_LINKS=/wheelhouse",
                      "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1", BASE, "bash", "-c", SETUP, check=False)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        seconds = float(re.search(r"SETUP_SECONDS ([\d.]+)", run.stdout).group(1))
        _docker("commit", name, image)
    finally:
        _docker("rm", "-f", name, check=False)
    return image, seconds


RUN = r"""
set -u
cp -a /autograder.image/. /autograder/
cp -a /upload/. /autograder/submission/
[ -f /upload-metadata.json ] && cp /upload-metadata.json /autograder/submission_metadata.json
start=$(date +%s.%N)
# the log goes to /root, not /tmp: student code fills /tmp
/autograder/run_autograder >/root/run.log 2>&1 || echo "RUN_AUTOGRADER_EXIT $?"
end=$(date +%s.%N)
sleep 2  # anything left running would rewrite results.json now
echo "WALL_SECONDS $(python3 -c "print(round($end - $start, 1))")"
peak=$(cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.peak 2>/dev/null || echo 0)
echo "PEAK_BYTES $peak"
echo "LEFT_PROCESSES $(python3 -c "
import os
n = 0
for p in os.listdir('/proc'):
    try:
        n += p.isdigit() and int(open(f'/proc/{p}/status').read().split('Uid:')[1].split()[0]) >= 1000
    except OSError:
        pass
print(n)")"
echo "RESULTS_BEGIN"; cat /autograder/results/results.json; echo; echo "RESULTS_END"
echo "RESULTS_DIR $(ls -A /autograder/results | tr '\n' ' ')"
tail -c 3000 /root/run.log
"""


def run_autograder(image: str, upload: Path, metadata: dict | None = None) -> dict:
    """run_autograder on one upload (a folder: /autograder/submission) in a fresh container."""
    mounts = ["-v", f"{upload}:/upload:ro"]
    if metadata is not None:
        meta = upload.parent / f"{upload.name}-metadata.json"
        meta.write_text(json.dumps(metadata))
        mounts += ["-v", f"{meta}:/upload-metadata.json:ro"]
    run = _docker("run", "--rm", *LIMITS, *SCRATCH, "--tmpfs", f"/autograder:size={AUTOGRADER_MB}m,mode=755,exec",
                  *mounts, image, "bash", "-c", RUN, check=False)
    out = run.stdout
    assert "RESULTS_BEGIN" in out, out[-3000:] + run.stderr[-3000:]
    text = out.split("RESULTS_BEGIN\n", 1)[1].split("\nRESULTS_END", 1)[0]
    return {
        "results": json.loads(text),
        "raw": text,
        "wall": float(re.search(r"WALL_SECONDS ([\d.]+)", out).group(1)),
        "peak_mb": int(re.search(r"PEAK_BYTES (\d+)", out).group(1)) / 2**20,
        "left": int(re.search(r"LEFT_PROCESSES (\d+)", out).group(1)),
        "results_dir": re.search(r"RESULTS_DIR (.*)", out).group(1).split(),
        "log": out.split("RESULTS_DIR", 1)[1],
        "exit": re.search(r"RUN_AUTOGRADER_EXIT (\d+)", out),
    }


# ---------------------------------------------------------------- uploads


def upload_dir(tmp: Path, name: str, files: dict[str, bytes | str]) -> Path:
    d = tmp / "uploads" / name
    d.mkdir(parents=True)
    for rel, data in files.items():
        (d / rel).write_bytes(data.encode() if isinstance(data, str) else data)
    return d


def notebook(source: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# My VAE homework"),
                nbformat.v4.new_code_cell("!pip install -q torch\n%matplotlib inline"),
                nbformat.v4.new_code_cell(source),
                nbformat.v4.new_code_cell("print(kl_normal)")]
    return nbformat.writes(nb)


def honest_score(assignment_id: str, broken_function: str) -> float:
    """Points of the checks that neither call ``broken_function`` nor require a check that does."""
    checks = load_assignment(assignment_id).checks
    lost = {c.id for c in checks if broken_function in c.needs}
    changed = True
    while changed:
        changed = False
        for c in checks:
            if c.id not in lost and set(c.requires) & lost:
                lost.add(c.id)
                changed = True
    return sum(c.points for c in checks if c.id not in lost)


def assert_well_formed(r: dict, assignment_id: str) -> dict:
    res = r["results"]
    assert r["exit"] is None, r["log"]
    assert "Grading failed" not in res["output"] and res.get("tests"), r["log"]
    assert r["left"] == 0, "processes of a worker uid outlived run_autograder"
    assert r["results_dir"] == ["results.json"], r["results_dir"]
    assert res["extra_data"]["assignment"] == assignment_id and res["output_format"] == "md"
    assert res["stdout_visibility"] == "hidden"
    assert res["extra_data"]["versions"]["hypothesis"] != "not installed"
    assert abs(res["score"] - sum(t["score"] for t in res["tests"])) < 1e-6
    for t in res["tests"]:
        assert t["status"] == ("passed" if t["score"] == t["max_score"] else "failed")
        assert t["status"] == "passed" or t["output"].strip(), f"no feedback for {t['name']}"
    assert "process sandbox" in res["output"]
    return res


def full_marks(r: dict, assignment_id: str) -> None:
    res = assert_well_formed(r, assignment_id)
    failed = [(t["name"], t["output"][:300]) for t in res["tests"] if t["status"] != "passed"]
    assert not failed and res["score"] == load_assignment(assignment_id).max_score, failed


# ---------------------------------------------------------------- hw2 in regular CI


@pytest.fixture(scope="session")
def hw2_image(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gradescope-hw2")
    image, seconds = set_up("hw2_vae", tmp, limited=False)
    yield image, tmp  # kept: the next session with the same zip reuses it


def test_hw2_autograder_grades_honestly_in_a_simulated_gradescope(hw2_image):
    image, tmp = hw2_image
    reference = (ROOT / "reference" / "vae.py").read_text()
    marker = f"forged-{uuid.uuid4().hex[:8]}"
    attacks = (Path(__file__).parent / "gradescope" / "attacks.py").read_text().replace("__MARKER__", marker)
    # The reference is uploaded as a notebook named the way Gradescope keeps a re-upload (`vae (2).ipynb`):
    # full marks there covers the reference and the notebook path (a .py reference is graded the same way
    # by every other test); three gradings at 0.5 CPU each keep CI's two cores free for the rest.
    uploads = {
        "blank": (upload_dir(tmp, "blank", {"vae.py": (ROOT / "assignments/hw2_vae/handout/vae.py").read_bytes()}), None),
        "notebook": (upload_dir(tmp, "notebook", {"vae (2).ipynb": notebook(reference)}),
                     {"id": 123456, "created_at": "2026-11-29T10:00:00.000000-08:00", "users": [{"id": 42, "email": "a@b.c", "name": "A"}],
                      "previous_submissions": []}),
        "hostile": (upload_dir(tmp, "hostile", {"vae.py": reference + "\n" + attacks}), None),
    }
    with ThreadPoolExecutor(len(uploads)) as pool:  # 3 x 0.5 CPU
        runs = dict(zip(uploads, pool.map(lambda u: run_autograder(image, *u), uploads.values())))

    blank = assert_well_formed(runs["blank"], "hw2_vae")
    assert blank["score"] == 0

    nb = runs["notebook"]
    full_marks(nb, "hw2_vae")
    assert "vae (2).ipynb" in nb["results"]["output"]
    assert nb["results"]["extra_data"]["gradescope"] == {"submission_id": 123456, "user_ids": [42],
                                                         "previous_submissions": 0}
    assert "a@b.c" not in nb["raw"]

    hostile = runs["hostile"]
    res = assert_well_formed(hostile, "hw2_vae")
    assert marker not in hostile["raw"]
    assert res["score"] == honest_score("hw2_vae", "negative_iwae_bound"), [
        (t["name"], t["output"][:200]) for t in res["tests"] if t["status"] != "passed"]
    iwae = [t for t in res["tests"] if "negative_iwae_bound" in t["tags"]]
    assert iwae and all(t["score"] == 0 for t in iwae)
    assert any("did not finish within" in t["output"] for t in iwae)
    found = re.search(r"attacks: read (\[.*?\]), wrote (\[.*?\]), signalled (\d+) processes", res["output"])
    assert found, res["output"][-2000:]
    assert found.group(1) == "[]" and found.group(2) == "[]", found.group(0)  # nothing readable or writable
    filled = re.search(r"attacks: filled (\d+) MB", res["output"])
    assert filled and int(filled.group(1)) > 0  # it did fill what it could


# ---------------------------------------------------------------- every assignment (the longer command)


MEASURED: dict[str, dict] = {}


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_every_autograder_gives_the_reference_full_marks_within_gradescope_limits(assignment_id, request,
                                                                                 tmp_path_factory):
    """`pytest -m docker tests/test_gradescope.py --gradescope-all`: setup under Gradescope's limits, the
    reference and the blank handout graded, and the measured numbers written to docs/gradescope.md."""
    if not request.config.getoption("--gradescope-all"):
        pytest.skip("the longer run: --gradescope-all")
    tmp = tmp_path_factory.mktemp(f"gradescope-{assignment_id}")
    image, setup_s = set_up(assignment_id, tmp, limited=True)
    try:
        a = load_assignment(assignment_id)
        module = a.config.module
        reference = upload_dir(tmp, "reference", {f"{module}.py": (ROOT / "reference" / f"{module}.py").read_text()})
        blank = upload_dir(tmp, "blank", {f"{module}.py": (a.path / "handout" / f"{module}.py").read_bytes()})
        ref = run_autograder(image, reference)  # one at a time: the wall time is that of a lone submission
        empty = run_autograder(image, blank)
    finally:
        _docker("rmi", "-f", image, check=False)
    MEASURED[assignment_id] = {"setup": setup_s, "wall": ref["wall"], "peak": ref["peak_mb"],
                               "score": ref["results"]["score"], "max": a.max_score,
                               "blank_wall": empty["wall"], "blank_score": empty["results"]["score"]}
    _write_table()
    full_marks(ref, assignment_id)
    assert assert_well_formed(empty, assignment_id)["score"] == 0
    assert ref["wall"] < 600 and ref["peak_mb"] < 768


def _write_table() -> None:
    rows = ["| assignment | setup.sh | reference: wall | reference: peak memory | reference score | blank handout: wall, score |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for aid, m in sorted(MEASURED.items()):
        rows.append(f"| {aid} | {m['setup']:.0f} s | {m['wall']:.0f} s | {m['peak']:.0f} MiB | "
                    f"{m['score']:g} / {m['max']:g} | {m['blank_wall']:.0f} s, {m['blank_score']:g} |")
    text = DOC.read_text()
    begin, end = "<!-- measured: begin -->", "<!-- measured: end -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        DOC.write_text(head + begin + "\n" + "\n".join(rows) + "\n" + end + rest.split(end, 1)[1])
