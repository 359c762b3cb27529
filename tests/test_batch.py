"""`dgm-grade batch`: a class of real submissions (correct, buggy, broken, hostile) graded into a
gradebook, per-student results and a report; resumed, regraded with --only, interrupted, and on Ray.

The class comes from examples/make_class.py (the generator of the documented 40- and 100-student
runs); CI grades 8 students. tests/test_batch_report.py renders the report in Chromium.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT
from examples.make_class import make_class
from grader import api
from grader.batch.gradebook import cell, grades_csv
from grader.batch.roster import RosterError, find_submissions
from grader.batch.run import read_record
from grader.results import Results

OPTIONS = dict(assignment_id="hw2_vae", sandbox="process", workers=2, timeout=5.0)


def rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def class_of(folder: Path, *wanted: str) -> dict[str, str]:
    """A generated class (examples/make_class.py) with only the students of the ``wanted`` kinds."""
    kinds = make_class(folder, 11)  # its first 11 students are one of each kind
    for student, kind in list(kinds.items()):
        if kind not in wanted:
            for path in folder.glob(f"{student}*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            del kinds[student]
    assert sorted(kinds.values()) == sorted(wanted)
    return kinds


def processes_with(variable: str) -> list[int]:
    """Pids of the processes whose environment holds ``variable`` (``NAME=value``)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if variable.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            pass
    return found


# ---------------------------------------------------------------- who is in the class


def test_students_are_found_in_each_layout(tmp_path):
    """Files (id = stem), folders and zips (id = name); hidden files, __MACOSX and the output folder
    skipped; two entries that would share a folder get distinct ids."""
    (tmp_path / "alice.py").write_text("x = 1")
    (tmp_path / "alice.zip").write_bytes(b"PK")
    (tmp_path / "bob").mkdir()
    (tmp_path / "carol.ipynb").write_text("{}")
    (tmp_path / ".DS_Store").write_text("")
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "notes.txt").write_text("not a submission")
    (tmp_path / "out").mkdir()
    (tmp_path / "d ä v/e").mkdir(parents=True)
    entries = find_submissions(tmp_path, skip=tmp_path / "out")
    assert [e.student for e in entries] == ["alice", "alice-2", "bob", "carol", "d_v"]
    assert [e.path.name for e in entries] == ["alice.py", "alice.zip", "bob", "carol.ipynb", "d ä v"]


def test_a_gradescope_export_gives_names_emails_and_sids(tmp_path):
    kinds = make_class(tmp_path / "export", 3, gradescope=True)
    meta = (tmp_path / "export" / "submission_metadata.yml")
    meta.write_text(meta.read_text() + "submission_999999:\n  :submitters:\n  - {':name': Gone, ':sid': '1'}\n")
    entries = find_submissions(tmp_path / "export")
    assert [e.student for e in entries] == sorted(kinds)  # the listed folder that was not exported is left out
    assert entries[0].name == "Student 0" and entries[0].email == "s0@uni.edu" and entries[0].sid == "900"
    meta.write_text(":\n  - [unclosed")
    with pytest.raises(RosterError, match="not readable as YAML"):
        find_submissions(tmp_path / "export")


def test_spreadsheet_formulas_from_students_are_defused():
    assert cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert [cell(t) for t in ("+1", "-1", "@a", "\tx", "Ann")] == ["'+1", "'-1", "'@a", "'\tx", "Ann"]
    assert cell(-1.5) == -1.5  # numbers stay numbers


def test_unusable_batch_commands_are_one_readable_line(tmp_path):
    (tmp_path / "class").mkdir()
    for kwargs, message in [
        (dict(folder=tmp_path / "nope"), "no such folder"),
        (dict(only=["no_such_check"]), "--only: no check or function named 'no_such_check'"),
        (dict(workers=0), "--workers must be at least 1"),
        (dict(backend="slurm"), "--backend must be local or ray"),
        (dict(assignment_id="hw9"), "unknown assignment"),
    ]:
        args = {"folder": tmp_path / "class", "out": tmp_path / "out", **OPTIONS, **kwargs}
        with pytest.raises(api.UsageError, match=message):
            api.run_batch(**args)


# ---------------------------------------------------------------- a class, end to end


@pytest.mark.slow
def test_a_class_is_graded_into_a_gradebook_results_and_a_report_then_resumed(tmp_path, monkeypatch):
    """All checks for 5 students (about 1.5 minutes on 2 cores): correct work gets full marks; the
    blank handout 0; a mutant less; a syntax error and a file that is not a zip are rows with their
    reasons. Then re-runs (``check_reruns``). A hang and a crash: the Ray test; notebooks as students
    write them: tests/test_notebook.py."""
    kinds = class_of(tmp_path / "class", "correct", "mutant", "blank", "syntax error", "not a zip")
    out = tmp_path / "out"
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the jobs' folders go
    summary = api.run_batch(folder=tmp_path / "class", out=out, **OPTIONS)
    assert sorted(summary.graded) == sorted(kinds) and not summary.skipped
    table = rows(out)
    assert set(table) == set(kinds)
    full = table["student000"]["max_score"]
    expected_status = {"correct": "graded", "mutant": "graded", "blank": "graded",
                       "syntax error": "import error", "hangs": "timeout", "exits": "crash", "not a zip": "unreadable"}
    for student, kind in kinds.items():
        row = table[student]
        assert row["status"] == expected_status[kind], (student, kind, row["reason"])
        if kind.startswith("correct"):
            assert row["score"] == full, (student, kind)
        if kind in ("blank", "syntax error", "not a zip"):
            assert float(row["score"]) == 0, (student, kind)
        if kind == "mutant":
            assert 0 < float(row["score"]) < float(full), (student, kind)  # the other functions keep their points
        results = Results.model_validate_json((out / student / "results.json").read_bytes())
        assert results.score == float(row["score"])
        assert (out / student / "feedback.md").read_text().startswith(f"# {student}")
    header = next(csv.reader(io.StringIO((out / "grades.csv").read_text())))
    assert header[:9] == ["student", "name", "email", "sid", "status", "score", "max_score", "seconds", "reason"]
    assert "lme_gradient" in header  # a column per check, by id
    assert (out / "gradescope_scores.csv").read_text().startswith("Name,SID,Email,Score\n")
    report = (out / "report.html").read_text()
    assert 'id="histogram"' in report and "data:image/png;base64," in report
    assert not list((tmp_path / "tmp").iterdir()), "a job's temporary folder was left behind"
    check_reruns(tmp_path / "class", out, kinds)


def check_reruns(work: Path, out: Path, kinds: dict[str, str]) -> None:
    """A re-run grades nobody; a resubmission is graded alone; --only regrades one function's checks
    for everyone and merges them into the complete grades."""
    before = rows(out)

    summary = api.run_batch(folder=work, out=out, **OPTIONS)
    assert summary.graded == [] and sorted(summary.skipped) == sorted(kinds)

    broken = next(s for s, k in kinds.items() if k == "syntax error")
    (work / f"{broken}.py").write_text((ROOT / "assignments/hw2_vae/handout/vae.py").read_text())  # resubmitted
    summary = api.run_batch(folder=work, out=out, **OPTIONS)
    assert summary.graded == [broken]
    assert rows(out)[broken]["status"] == "graded"

    summary = api.run_batch(folder=work, out=out, only=["log_mean_exp"], **OPTIONS)
    assert sorted(summary.graded) == sorted(kinds)
    after = rows(out)
    for student in kinds:
        assert after[student]["score"] == before[student]["score"], student
        record = read_record(out / student)
        assert record.only == []  # merged into the complete grade: a later run trusts it
    results = Results.model_validate_json((out / "student000" / "results.json").read_bytes())
    assert len(results.tests) == len(read_record(out / "student000").checks)
    assert "Regraded with --only log_mean_exp" in results.output
    assert api.run_batch(folder=work, out=out, **OPTIONS).graded == []


@pytest.mark.slow
def test_an_interrupted_batch_loses_only_the_students_in_flight(tmp_path):
    """SIGINT to `dgm-grade batch` while it grades: exit 130, the students finished keep their files,
    the class files cover them, no grading process or temporary folder is left, and a re-run grades
    only the others."""
    class_of(tmp_path / "class", "blank", "syntax error")  # student002, then student003 (in flight when stopped)
    cmd = [sys.executable, "-m", "grader", "batch", str(tmp_path / "class"), "-a", "hw2_vae", "--out",
           str(tmp_path / "out"), "--workers", "1", "--sandbox", "process", "--timeout", "5"]
    tmp = tmp_path / "tmp"  # this batch's own: its jobs' folders, and a mark in their environment
    tmp.mkdir()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "TMPDIR": str(tmp)})
    deadline = time.monotonic() + 300
    while not (tmp_path / "out" / "student002" / "record.json").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130, output
    assert read_record(tmp_path / "out" / "student003") is None
    assert set(rows(tmp_path / "out")) == {"student002"}
    assert not processes_with(f"TMPDIR={tmp}"), "a grading process outlived the batch"
    assert not list(tmp.glob("dgm-batch-job-*")), "a job's temporary folder was left behind"

    summary = api.run_batch(folder=tmp_path / "class", out=tmp_path / "out", **OPTIONS)
    assert summary.skipped == ["student002"] and summary.graded == ["student003"]


@pytest.mark.slow
def test_the_ray_backend_gives_the_same_gradebook_as_the_local_one(tmp_path):
    """Each submission a Ray task on a local Ray started here (the files travel in the task, as to a
    node without the driver's disk); the same CSV as the local backend, the seconds column apart.
    Ray's children start cold, while the local backend grades its third and fourth students in warm
    children (grader/batch/local.py): this is also the test that a warm start grades the same."""
    pytest.importorskip("ray")
    kinds = class_of(tmp_path / "class", "correct", "hangs", "exits", "not a zip")
    only = ["log_mean_exp"]
    local = api.run_batch(folder=tmp_path / "class", out=tmp_path / "local", only=only, warm_start=True, **OPTIONS)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = api.run_batch(folder=tmp_path / "class", out=tmp_path / "ray", backend="ray", only=only,
                               **{**OPTIONS, "workers": None})
    finally:
        ray.shutdown()

    def comparable(summary) -> list[dict]:
        return [r.model_dump(exclude={"elapsed", "graded_at", "checks"}) | {
            "checks": [c.model_dump() for c in r.checks]} for r in summary.records]

    assert len(on_ray.records) == len(kinds)
    status = {kinds[r.student]: r.status for r in on_ray.records}
    assert status == {"correct": "graded", "hangs": "timeout", "exits": "crash", "not a zip": "unreadable"}
    hang = next(r for r in on_ray.records if kinds[r.student] == "hangs")
    assert "did not finish within 5.0 s" in json.dumps(hang.model_dump())
    assert comparable(on_ray) == comparable(local)
    strip = lambda text: [row[:7] + row[8:] for row in csv.reader(io.StringIO(text))]  # noqa: E731
    assert strip(grades_csv(on_ray.records)) == strip(grades_csv(local.records))


@pytest.mark.docker
def test_a_batch_in_docker_runs_each_student_in_a_container_of_its_own(tmp_path):
    from grader.sandbox import docker as docker_sandbox

    if not docker_sandbox.docker_available(docker_sandbox.DEFAULT_IMAGE):
        pytest.skip("needs a Docker daemon and the grading image")
    make_class(tmp_path / "class", 6)
    for p in list((tmp_path / "class").iterdir()):
        if p.stem not in ("student000", "student005"):  # correct, and one that ends its process
            p.unlink()
    summary = api.run_batch(folder=tmp_path / "class", out=tmp_path / "out", assignment_id="hw2_vae",
                            sandbox="docker", workers=2, only=["log_mean_exp"])
    by_student = {r.student: r for r in summary.records}
    assert by_student["student000"].score == by_student["student000"].max_score > 0
    assert by_student["student005"].status == "crash"
    results = Results.model_validate_json((tmp_path / "out" / "student000" / "results.json").read_bytes())
    assert results.extra_data["sandbox"] == "docker"
    import docker

    left = docker.from_env().containers.list(all=True, filters={"ancestor": docker_sandbox.DEFAULT_IMAGE})
    assert not [c for c in left if c.status == "running"], "a grading container outlived its student"
