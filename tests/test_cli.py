"""The dgm-grade command as users run it: exit codes, results.json, no tracebacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from grader.assignment import load_assignment

HANDOUT = ROOT / "assignments" / "hw2_vae" / "handout" / "vae.py"


def dgm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # piped output is never wrapped, whatever the width
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_check_reference_exits_0_and_template_exits_1():
    ok = dgm("check", "reference/vae.py", "--assignment", "hw2_vae", "--sandbox", "process")
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    hidden = sum(c.points for c in load_assignment("hw2_vae").checks if c.hidden)
    assert f"Score: 35 / 35 public points; hidden checks grade the remaining {hidden:g} points after submission" in ok.stdout
    blank = dgm("check", str(HANDOUT), "--sandbox", "process")  # assignment inferred from vae.py
    assert blank.returncode == 1
    assert "Score: 0 / 35" in blank.stdout
    no_traceback(blank)
    functions = ("kl_normal", "sample_gaussian", "log_bernoulli_with_logits", "log_mean_exp", "negative_elbo_bound",
                 "negative_iwae_bound")
    lines = blank.stdout.splitlines()
    assert [ln for ln in lines if ln.startswith("  FAIL")] == [f"  FAIL {f}: not implemented yet" for f in functions]
    assert "│ kl_normal: not implemented yet (7 checks) " in blank.stdout and "╭" not in blank.stdout  # no panels
    assert lines[-2].startswith("Score: 0 / 35")
    assert lines[-1].startswith("process sandbox") and len(lines[-1]) > 80  # the sandbox in words, on one line


def test_grade_writes_gradescope_results_even_for_a_broken_submission(tmp_path):
    out = tmp_path / "results.json"
    bad = tmp_path / "vae.py"
    bad.write_text("import torch\ndef kl_normal(:\n")
    result = dgm("grade", str(bad), "--assignment", "hw2_vae", "--out", str(out), "--sandbox", "process", "-q")
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"score", "execution_time", "output", "output_format", "stdout_visibility", "tests",
                         "extra_data"}
    assert data["score"] == 0 and len(data["tests"]) == len(load_assignment("hw2_vae").checks)
    test = data["tests"][0]
    assert set(test) == {"name", "number", "score", "max_score", "status", "output", "visibility", "tags"}
    assert test["name"].startswith("kl_normal: ") and test["status"] == "failed"
    assert "SyntaxError" in test["output"]
    assert {t["visibility"] for t in data["tests"]} == {"visible", "after_published"}
    assert set(data["extra_data"]) >= {"grader_version", "checks_hash", "seed", "sandbox"}


@pytest.mark.parametrize("args,message", [
    (("check", "nowhere.py"), "no such file"),
    (("check", "draft[v1].py"), "draft[v1].py"),  # brackets are text, not rich markup
    (("check", "reference/vae.py", "--assignment", "hw9_nope"), "unknown assignment 'hw9_nope'"),
    (("check", "reference/vae.py", "--sandbox", "vm"), "--sandbox must be"),
    (("grade", "reference/vae.py"), "Missing option"),
    (("check", "reference/vae.py", "--timeout", "-1"), "--timeout must be positive"),
    (("check", "README.md"), "cannot tell which assignment"),
    (("student-bundle", "hw9_nope", "--out", "dist"), "unknown assignment 'hw9_nope'"),
    (("student-bundle", "hw2_vae", "--out", "README.md"), "--out README.md is a file"),
])
def test_unusable_commands_exit_2_with_one_readable_line(args, message):
    result = dgm(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    no_traceback(result)


def test_list_shows_assignments_checks_and_points():
    result = dgm("list")
    assert result.returncode == 0
    assert "hw2_vae" in result.stdout and "kl_normal: zero for identical distributions" in result.stdout
    assert "mask with entry [i, j] = 1 iff order[j] < order[i]" in result.stdout  # brackets survive rich


def test_no_sandbox_is_refused_unless_explicitly_allowed(monkeypatch):
    from grader import api
    from grader.sandbox.unisolated import UNSAFE_ENV

    limits = api.assignment_config("hw2_vae").limits.sandbox_limits()
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    with pytest.raises(api.UsageError, match=UNSAFE_ENV):
        api.sandbox_for(limits, kind="none")
    refused = dgm("check", "reference/vae.py", "-a", "hw2_vae", "--sandbox", "none", timeout=120)
    assert refused.returncode == 2 and UNSAFE_ENV in refused.stderr
    monkeypatch.setenv(UNSAFE_ENV, "1")
    assert api.sandbox_for(limits, kind="none").name == "none"
