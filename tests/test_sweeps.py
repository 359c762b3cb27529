"""The long runs of docs/security.md, run small: the seed sweep (correct submissions lose nothing under
other grading seeds: examples/seed_sweep.sh) and the determinism run (one submission graded again with
the same seed gives identical results: examples/determinism.sh). hw4 grades fastest."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent


def run(script: str, **env: str) -> subprocess.CompletedProcess:
    """bash examples/<script> with ``env`` added, graded with the dgm-grade of this interpreter."""
    done = subprocess.run(["bash", f"examples/{script}"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DGM": str(BIN / "dgm-grade"), "PYTHON": sys.executable,
                               "ASSIGNMENTS": "hw4_gan", "JOBS": "2", **env})
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_seed_sweep_reports_lost_checks_and_goes_on_where_it_stopped(tmp_path):
    first = run("seed_sweep.sh", FIRST_SEED="5", SEEDS="1", OUT=str(tmp_path))
    assert "2 gradings to run" in first.stdout
    assert "2 gradings of correct submissions, 0 checks lost" in first.stdout
    assert "hw4_gan (checks " in first.stdout and "1 seeds, 5-5" in first.stdout
    reference, correct = tmp_path / "hw4_gan" / "reference-gan-5.json", tmp_path / "hw4_gan" / "hw4_gan-correct-5.json"
    assert json.loads(reference.read_text())["extra_data"]["seed"] == 5

    cut_short = json.loads(reference.read_text())  # a grading stopped part-way is graded again
    cut_short["extra_data"]["finished"] = False
    reference.write_text(json.dumps(cut_short))
    lost = json.loads(correct.read_text())  # a finished one is not, and what it lost is listed
    lost["tests"][0]["score"] = 0
    correct.write_text(json.dumps(lost))
    again = run("seed_sweep.sh", FIRST_SEED="5", SEEDS="1", OUT=str(tmp_path))
    assert "1 gradings to run" in again.stdout
    assert json.loads(reference.read_text())["extra_data"]["finished"] is True
    assert "2 gradings of correct submissions, 1 checks lost" in again.stdout
    assert f"lost: {correct}: {lost['tests'][0]['name']}" in again.stdout

    cut_short["tests"][0]["score"] = 0  # a grading killed part-way: its unrun checks are not lost ones
    reference.write_text(json.dumps(cut_short))
    summary = run("seed_sweep.sh", FIRST_SEED="5", SEEDS="0", OUT=str(tmp_path))
    assert "0 gradings to run" in summary.stdout
    assert "1 gradings of correct submissions, 1 checks lost" in summary.stdout
    assert f"1 gradings cut short, not counted (the same command grades them again):\n  cut short: {reference}\n" \
        in summary.stdout
    assert f"lost: {reference}" not in summary.stdout


def test_the_determinism_run_finds_the_same_results(tmp_path):
    done = run("determinism.sh", RUNS="2", SEED="3", OUT=str(tmp_path))
    assert "hw4_gan: 2 gradings, score 30.0, all identical" in done.stdout
    assert "0 gradings differ" in done.stdout
