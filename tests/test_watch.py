"""``check --watch`` and the warm start (grader/watch.py, grader/standby.py).

- ``--watch`` in a subprocess: correct -> buggy -> correct prints the checks
  that changed verdict and the new score line; Ctrl-C ends it (exit 0) and
  leaves no worker behind.
- Grades are the same with a standby worker (the files sent over the
  protocol) and with a worker started the ordinary way, for the reference and
  a sample, under two seeds.
- A standby worker has never seen student code: its work folder is empty
  until the files arrive.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import api
from grader.standby import RESERVE_BYTES, Standby
from grader.submission import MAX_TOTAL_BYTES

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "vae.py"
BUGGY_KL = '''

def kl_normal(q_mean, q_log_var, p_mean, p_log_var):  # forgot the -1 inside the sum
    return 0.5 * (p_log_var - q_log_var + (q_log_var.exp() + (q_mean - p_mean) ** 2) / p_log_var.exp()).sum(-1)
'''


class WatchProcess:
    """``dgm-grade check FILE --watch`` in a subprocess, read line by line."""

    def __init__(self, path: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader", "check", str(path), "-a", "hw2_vae", "--sandbox", "process", "--watch",
             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, cwd=path.parent)

    def until(self, marker: str, timeout: float = 300) -> str:
        """What it prints up to and including the next line holding ``marker``."""
        lines, deadline = [], time.monotonic() + timeout
        for line in self.proc.stdout:
            lines.append(line)
            if marker in line:
                return "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
        raise AssertionError(f"--watch exited (rc {self.proc.wait()}) before printing {marker!r}:\n{''.join(lines)}")

    def descendants(self) -> set[int]:
        """Every process started under it (read from /proc/<pid>/task/*/children)."""
        found, todo = set(), [self.proc.pid]
        while todo:
            pid = todo.pop()
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    kids = {int(k) for k in (task / "children").read_text().split()}
                except OSError:
                    continue
                todo += list(kids - found)
                found |= kids
        return found


def save(path: Path, text: str) -> None:
    """Write as an editor would, and make sure the modification time moves."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_watch_prints_what_changed_and_stops_cleanly(tmp_path):
    path = tmp_path / "vae.py"
    correct = REFERENCE.read_text()
    path.write_text(correct)
    watch = WatchProcess(path, "--only", "kl_normal")
    try:
        first = watch.until("watching")
        assert "Score: 8 / 8" in first, first
        save(path, correct + BUGGY_KL)
        buggy = watch.until("watching")
        assert "now FAIL kl_normal: zero for identical distributions" in buggy, buggy
        assert "now PASS" not in buggy and "Score: " in buggy and "Score: 8 / 8" not in buggy, buggy
        assert "Counterexample" in buggy, buggy
        save(path, correct)
        fixed = watch.until("watching")
        assert "now PASS kl_normal: zero for identical distributions" in fixed, fixed
        assert "now FAIL" not in fixed and "Score: 8 / 8" in fixed, fixed
        workers = watch.descendants()
        assert workers, "the next run's worker should be waiting"
        watch.proc.send_signal(signal.SIGINT)
        rest, _ = watch.proc.communicate(timeout=60)
        assert watch.proc.returncode == 0, rest
        assert "stopped watching" in rest
        time.sleep(0.5)
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
                 and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
        assert not alive, f"processes left behind: {alive}"
    finally:
        if watch.proc.poll() is None:
            watch.proc.kill()
            watch.proc.wait()


def test_watch_reports_a_save_that_breaks_the_import(tmp_path):
    path = tmp_path / "vae.py"
    correct = REFERENCE.read_text()
    path.write_text(correct)
    watch = WatchProcess(path, "--only", "log_mean_exp")
    try:
        assert "Score: 5 / 5" in watch.until("watching")
        save(path, correct + "\nthis is not python\n")
        broken = watch.until("watching")
        assert "could not be imported" in broken and "now FAIL" in broken, broken
    finally:
        watch.proc.send_signal(signal.SIGINT)
        watch.proc.communicate(timeout=60)


@pytest.mark.parametrize("sample, seed", [("reference", 2026), ("partly_wrong", 3)])
def test_warm_start_grades_the_same(tmp_path, sample, seed):
    source = REFERENCE if sample == "reference" else ROOT / "examples" / "hw2_vae" / f"{sample}.py"
    path = tmp_path / "vae.py"
    shutil.copy(source, path)
    only = ["kl_normal", "sample_gaussian", "log_mean_exp", "log_bernoulli_with_logits"]

    def grade(warm: bool):
        g = api.run_grading(submission=path, assignment_id="hw2_vae", hidden=True, sandbox="process", seed=seed,
                            only=only, warm_start=warm)
        return g.score, g.problem, [(r.check.id, r.passed, r.score, r.output) for r in g.results]

    warm, cold = grade(True), grade(False)
    assert warm == cold
    if sample == "reference":
        assert all(passed for _, passed, _, _ in warm[2])
    else:
        assert not all(passed for _, passed, _, _ in warm[2])


def test_a_standby_worker_holds_no_student_files():
    box = api.sandbox_for(api.assignment_config("hw2_vae").limits.sandbox_limits(), kind="process")
    with Standby(box) as standby:
        assert standby.session is not None and list(standby.session.work.iterdir()) == []
        assert standby.session.files_mb() >= RESERVE_BYTES >> 20
    assert standby.session is None  # closed: its folder is gone


def test_the_standby_reserve_fits_the_largest_submission():
    assert RESERVE_BYTES >= MAX_TOTAL_BYTES


def test_the_worker_writes_sent_files_only_inside_its_folder_and_only_before_load(tmp_path, monkeypatch):
    import torch

    from grader.worker.main import Worker

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load() puts the work folder first
    monkeypatch.setitem(sys.modules, "vae", None)  # and imports "vae": put back whatever was there
    del sys.modules["vae"]
    r, w = os.pipe()
    worker = Worker(r, w, str(tmp_path / "capture.txt"))
    data = {"f0": torch.frombuffer(bytearray(b"x = 1\n"), dtype=torch.uint8)}
    for bad in ("../escape.py", "/tmp/escape.py", "pkg/../../escape.py"):
        assert not worker.put_files({bad: "f0"}, data)["ok"], bad
    assert not (tmp_path.parent / "escape.py").exists()
    assert worker.put_files({"pkg/helper.py": "f0", "vae.py": "f0"}, data)["ok"]
    assert (tmp_path / "pkg" / "helper.py").read_bytes() == b"x = 1\n"
    assert worker.load("vae")["ok"]
    assert not worker.put_files({"late.py": "f0"}, data)["ok"]
    assert not (tmp_path / "late.py").exists()
