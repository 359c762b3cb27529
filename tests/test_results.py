"""results.json: Markdown student text cannot break, strict JSON and UTF-8, visibility from config,
Gradescope metadata, the placeholder that survives a full disk."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.checks import Check
from grader.config import AssignmentConfig, ConfigError, load_config
from grader.deploy.gradescope import read_metadata
from grader.judge import CheckResult, Grade
from grader.results import (RESERVED_BYTES, code_block, dumps, failure_results, reserve_results, to_results,
                            write_results)


def _grade(outputs: list[str], *, hidden: bool = False) -> Grade:
    assignment = load_assignment("hw2_vae")
    checks = [c for c in assignment.checks if c.hidden == hidden][: len(outputs)]
    results = [CheckResult(c, not out, float(c.points) if not out else 0.0, out, 0.1) for c, out in zip(checks, outputs)]
    return Grade(assignment, results, 7, "process", "process sandbox: test")


@pytest.mark.parametrize("text", ["```\n# injected\n```", "````` <script>x</script> **bold**", "`", "a\n```text\n"])
def test_student_text_cannot_close_the_code_block(text):
    block = code_block(text)
    fence = block.splitlines()[0].removesuffix("text")
    assert block.endswith("\n" + fence) and block.count(fence) == 2
    assert len(fence) > max((len(run) for run in text.split("\n") for run in run.split("a") if set(run) == {"`"}),
                            default=0)


def test_results_are_markdown_strict_json_and_valid_utf8(tmp_path):
    g = _grade(["kl_normal raised ValueError: bad \udcff\ud800 ``` **x**", "", "nan everywhere"])
    g.notes.append("vae.py printed when imported:\n```\n<b>hi</b>")
    out = tmp_path / "results.json"
    results = write_results(g, out, extra={"gradescope": {"submission_id": 1, "user_ids": [2]}})
    raw = out.read_bytes()
    raw.decode("utf-8")  # valid UTF-8
    data = json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert data["output_format"] == "md" and data["stdout_visibility"] == "hidden"
    assert "\ufffd" in data["tests"][0]["output"] and data["tests"][0]["output"].startswith("````text\n")
    assert data["tests"][1]["output"] == "" and data["tests"][1]["status"] == "passed"
    assert "````text\nvae.py printed when imported" in data["output"]
    assert data["output"].splitlines()[-1] == "Graded in the process sandbox: test; seed 7."
    assert data["extra_data"]["gradescope"] == {"submission_id": 1, "user_ids": [2]}
    assert data["extra_data"]["versions"]["hypothesis"] not in ("", "not installed")
    assert results.score == data["score"]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_hidden_visibility_comes_from_config(tmp_path):
    g = _grade(["", "x"], hidden=True)
    assert {t.visibility for t in to_results(g).tests} == {"after_published"}
    base = (Path(load_assignment("hw2_vae").path) / "config.toml").read_text()
    cfg = tmp_path / "config.toml"
    cfg.write_text(base + '\n[gradescope]\nhidden_visibility = "after_due_date"\ndaily_submission_limit = 3\n')
    config = load_config(cfg)
    assert config.gradescope.hidden_visibility == "after_due_date" and config.gradescope.daily_submission_limit == 3
    object.__setattr__(g.assignment, "config", config)
    assert {t.visibility for t in to_results(g).tests} == {"after_due_date"}
    cfg.write_text(base + '\n[gradescope]\nhidden_visibility = "secret"\n')
    with pytest.raises(ConfigError, match="gradescope.hidden_visibility"):
        load_config(cfg)
    assert AssignmentConfig.model_fields["gradescope"].default.hidden_visibility == "after_published"


def test_a_full_disk_still_gets_results_through_the_placeholder(tmp_path, monkeypatch):
    out = tmp_path / "results.json"
    reserve_results(out, failure_results("grading did not finish"))
    assert out.stat().st_size == RESERVED_BYTES
    assert json.loads(out.read_text())["output"] == "grading did not finish"  # padding is JSON whitespace

    import grader.results as results_module

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results_module.tempfile, "mkstemp", full)
    write_results(_grade(["", "wrong"]), out)
    data = json.loads(out.read_text())
    assert data["extra_data"]["assignment"] == "hw2_vae" and out.stat().st_size == len(dumps(to_results(_grade(["", "wrong"]))))
    os.unlink(out)
    with pytest.raises(OSError):  # no placeholder: the error is not hidden
        write_results(_grade([""]), out)


def test_gradescope_metadata_ids_and_daily_count(tmp_path):
    meta = tmp_path / "m.json"
    meta.write_text(json.dumps({"id": 7, "created_at": "2026-11-29T12:00:00-08:00",
                                "users": [{"id": 1, "email": "s@x.edu", "name": "S"}, {"id": "2"}],
                                "previous_submissions": [
                                    {"submission_time": "2026-11-29T11:00:00-08:00", "score": 30.0},
                                    {"submission_time": "2026-11-29T09:00:00.1234567-08:00", "score": 12.0},
                                    {"submission_time": "2026-11-27T09:00:00-08:00", "score": 1.0}]}))
    m = read_metadata(meta)
    assert (m.submission_id, m.user_ids, m.submissions_in_last_day(), m.last_score()) == (7, [1, "2"], 2, 30.0)
    assert "s@x.edu" not in json.dumps(m.extra_data())
    for bad in (b"", b"[1]", b"{\"id\": {}}", b"\xff"):
        meta.write_bytes(bad)
        m = read_metadata(meta)
        assert m.submission_id is None and m.previous == []
    assert read_metadata(tmp_path / "missing.json").problem
