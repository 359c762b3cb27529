"""Every attack of tests/hostile/ against the Docker sandbox (issue 11).

tests/test_hostile.py grades each attack in the process sandbox; this module grades the same files
in worker containers of the grading image (grader/sandbox/docker.py), with the same expectations
where they apply: the score is at most the honest part (tests/hostile/README.md), the output says
what the attack met, and afterwards (the ``marker`` fixture) no marker file is at the host paths the
process tests look at, no process carries the marker, no container of the grading is left, nothing
of the checkout changed, and the next submission (the reference) grades normally, in Docker.

Where the process sandbox's expectation is its own, the Docker one instead:

- the worker's uid swept, cgroups made by the grader: the grader's containers are gone (by their
  labels), and with them every process the attack started (each container is a PID namespace);
- RLIMIT_NPROC (fork and thread bombs): the container's pids limit;
- the seccomp filter refusing memfd_create (memfd.py): Docker's default profile allows it, and the
  container's memory cgroup counts memfd pages: the call is killed for memory (its check's kind);
- uid collisions (kill_same_uid.py): every container runs as uid 65534, so another grader's worker
  always has the attacker's uid; its own PID namespace keeps it out of reach;
- file-system sizes (fill_disk.py, write_outside.py): /work (its own directory) and /tmp are tmpfs
  mounts of the limits' size, /dev/shm is Docker's (64 MB), /var/tmp is on the read-only root;
- the grader stopped with SIGKILL (hang_until_killed.py): nothing of the grader is left to remove
  its container; the container's PID 1 ends it when the daemon closes its stdin, even while the
  worker hangs in student code (grader/sandbox/docker.py, SUPERVISE);
- no equivalent: the no-namespace and unshare fallbacks, bubblewrap's allow-list, the worker uid
  lock, the session lock held by the grader (the container holds its own files).

The uploads the judge refuses before any student code runs (zip_bomb.py, many_cells.ipynb,
huge_output.ipynb, deep_expression.py) are sandbox-independent; they run here too (cheap), to show
that the worker started ahead for them (a container) goes.

CI runs DEFAULT, the attacks most likely to differ between the sandboxes (about a minute);
``--hostile-docker-all`` runs every one (docs/security.md has the figure and its duration).
"""
from __future__ import annotations

import ast
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import torch

from conftest import require_docker

pytestmark = pytest.mark.docker
require_docker()

from grader.client import WorkerClient  # noqa: E402
from grader.judge import Grade  # noqa: E402
from grader.sandbox.base import Limits  # noqa: E402
from grader.sandbox.docker import LABEL, DockerSandbox, _client  # noqa: E402
from test_hostile import (  # noqa: E402
    DEEP, HOSTILE, HUGE_NOTEBOOKS, LME, LME_BER, LME_POINTS, ONE_BER, REFERENCE, ZIP_BOMBS,
    assert_contained, attack, check_no_network, check_results, check_stopped_by_sigterm, grade_notebook, grade_text, grade_upload,
    huge_notebook, marker_files, marker_processes, new_marker, notebook, outputs, points, protected_files, run_cli,
    start_hanging_grader, wait_until, zip_bomb,
)
from test_hostile import open_out_dir  # noqa: E402, F401 (a fixture)

# The attacks CI runs: where the sandboxes differ most (the host's files and the image's, the disk, memory
# that is not address space, another worker of the same uid). About a minute on 2 busy cores.
DEFAULT = ("write_outside", "read_reference", "fill_disk", "memfd", "kill_same_uid")
ALL_ONLY = pytest.mark.skipif("not config.getoption('--hostile-docker-all')",
                              reason=f"with --hostile-docker-all (CI runs {', '.join(DEFAULT)})")

API = _client(timeout=60)


def chosen(*names: str) -> list:
    """``names`` as parameters, those not in DEFAULT only with --hostile-docker-all."""
    return [pytest.param(n, marks=() if n in DEFAULT else ALL_ONLY) for n in names]


def containers(pid: int | None = None) -> list[str]:
    """Containers, running or not, of the graders of process ``pid`` (this one by default) on this host."""
    labels = [f"{LABEL}.pid={pid or os.getpid()}", f"{LABEL}.host={socket.gethostname()}"]
    return [f"{c['Id'][:12]} {c['State']}" for c in API.containers(all=True, filters={"label": labels})]


def docker(name: str, ids: tuple[str, ...], marker: str = "", **options) -> Grade:
    """Grade the attack ``name`` (its __MARKER__ filled in) on the checks ``ids`` in a new Docker sandbox;
    ``options``: grade_text's (timeout, import_timeout, limits)."""
    return grade_text(attack(name, marker=marker), ids, kind="docker", **options)


@pytest.fixture
def marker():
    """test_hostile's marker in Docker: a unique string; after the test, no container of this process
    is left, and what ``assert_contained`` checks, the next submission graded in Docker."""
    before = protected_files()
    mark = new_marker()
    yield mark
    assert wait_until(lambda: not containers(), 10), containers()
    assert_contained(mark, before, kind="docker")
    assert containers() == []


def only(g: Grade, function: str):
    """The results of ``function``'s checks."""
    return [r for r in g.results if r.check.function == function]


# ------------------------------------------------------------------ import-time attacks
@pytest.mark.parametrize("name", chosen("exit_at_import_sys", "exit_at_import_os"))
def test_exit_at_import_fails_every_check(name, marker):
    g = docker(name, LME)
    assert g.score == 0
    assert g.problem and all("could not be imported" in r.output for r in g.results)
    if name == "exit_at_import_sys":
        assert "sys.exit(0)" in g.problem


@ALL_ONLY
def test_infinite_loop_at_import_costs_one_import_timeout(marker):
    g = docker("infinite_loop_at_import", LME, import_timeout=10)
    assert g.score == 0 and "did not finish within 10 s" in g.problem
    assert 'if __name__ == "__main__":' in g.problem
    assert all(r.elapsed < 0.5 for r in g.results[1:]), [r.elapsed for r in g.results]


# ------------------------------------------------------------------ attacks inside one function
@ALL_ONLY
def test_os_exit_in_a_function_costs_only_its_checks(marker):
    g = docker("exit_in_function", LME_BER)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    assert all("the worker died while running log_bernoulli_with_logits" in r.output
               for r in only(g, "log_bernoulli_with_logits"))


@ALL_ONLY
def test_infinite_loop_in_a_function_costs_one_timeout(marker):
    g = docker("infinite_loop_in_function", LME_BER, timeout=2)
    ber = only(g, "log_bernoulli_with_logits")
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    assert "did not finish within 2.0 s" in ber[0].output and ber[0].elapsed >= 2, ber[0].elapsed
    for r in ber[1:]:
        assert r.output.startswith("skipped:") and r.elapsed < 0.5, (r.output, r.elapsed)


@ALL_ONLY
def test_4gib_allocation_is_killed_for_memory_in_that_check_only(marker):
    """Docker limits memory, not address space: the 4 GiB are mapped, then the container's memory cgroup
    kills the worker as they are touched, and the check says so (kind "memory")."""
    g = docker("huge_allocation", LME_BER)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    ber = only(g, "log_bernoulli_with_logits")[0]
    assert ber.kind == "memory" and "memory limit" in ber.output, (ber.kind, ber.output)


@ALL_ONLY
def test_fork_bomb_is_bounded_by_the_pids_limit(marker):
    start = time.monotonic()
    g = docker("fork_bomb", LME_BER, timeout=2)
    assert time.monotonic() - start < 60
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    # every process it forked was in the container: the fixture sees the container gone


# ------------------------------------------------------------------ forging results
def orphans() -> list[str]:
    """Containers on this host whose grader is gone (a `dgm-grade grade` run by a test, say). The next Docker
    sandbox made here removes them, so this is checked before the test makes one."""
    found = API.containers(all=True, filters={"label": [f"{LABEL}=1", f"{LABEL}.host={socket.gethostname()}"]})
    return [f"{c['Id'][:12]} {c['State']}" for c in found if not Path(f"/proc/{c['Labels'][f'{LABEL}.pid']}").exists()]


@ALL_ONLY
@pytest.mark.slow
def test_forged_results_json_is_never_the_result(marker, open_out_dir):
    out = open_out_dir
    proc = run_cli(attack("forge_results", out=out, marker=marker), out, "--only", ",".join(LME), sandbox="docker")
    assert proc.returncode == 0, proc.stderr
    assert orphans() == []
    data = check_results(out, marker)
    assert data["score"] == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["results.json"]
    assert not Path("/etc/dgm-hostile-" + marker).exists()
    lme = next(t for t in data["tests"] if t["name"].startswith("log_mean_exp"))
    assert "forged: [" in lme["output"] and f"'{out}" not in lme["output"]  # only the container's tmpfs


@ALL_ONLY
@pytest.mark.slow
def test_background_processes_cannot_rewrite_results_later(marker, open_out_dir):
    out = open_out_dir
    proc = run_cli(attack("background_rewriter", out=out, marker=marker), out, "--only", ",".join(LME),
                   sandbox="docker")
    assert proc.returncode == 0, proc.stderr
    first = out.read_bytes()
    assert not marker_processes(marker), marker_processes(marker)  # they died with the container
    assert orphans() == []
    time.sleep(3)  # the loops would have rewritten it ~30 times by now
    assert out.read_bytes() == first
    data = check_results(out, marker)
    assert data["score"] == 0
    lme = next(t for t in data["tests"] if t["name"].startswith("log_mean_exp") and t["output"])
    assert "leftovers: popen alive" in lme["output"], lme["output"]  # the attack really started its processes


# ------------------------------------------------------------------ the judge's files and the reference
@ALL_ONLY
def test_grader_check_and_test_files_cannot_be_overwritten(marker):
    g = docker("overwrite_grader_files", LME, marker)
    assert g.score == 0
    assert "touched []" in outputs(g)  # the image's worker package is read-only; nothing else is there


@pytest.mark.parametrize("name", chosen("read_reference"))
def test_reference_cannot_be_found_or_read(name, marker):
    g = docker(name, LME_BER)
    assert g.score == 0  # 6 with the reference in hand
    text = outputs(g)
    assert "found: []" in text  # the image holds the worker package only
    assert "logsigmoid" not in text and "logsumexp(x, dim=dim)" not in text


# ------------------------------------------------------------------ monkeypatching and rigged outputs
@ALL_ONLY
@pytest.mark.parametrize("name, ids", [("pickle_wrap", LME), ("monkeypatch_compare", LME), ("rigged_tensor", LME_BER)])
def test_patches_in_the_worker_do_not_reach_the_judge(name, ids, marker):
    g = docker(name, ids)
    assert g.score == 0, [r.check.name for r in g.results if r.passed]
    assert not g.problem


@ALL_ONLY
def test_forged_reports_of_inputs_and_gradients_are_checked_by_the_judge(marker):
    ids = ("lme_gradient", "lme_shift", "lme_dim_and_inputs", "nelbo_scalars", "nelbo_encoder_gradients")
    g = docker("forged_reports_inputs_and_gradients", ids)
    assert g.score == 4, [r.check.id for r in g.results if r.passed]  # log_mean_exp's 4
    failed = {r.check.id: r.output for r in g.results if not r.passed}
    assert "second time on the same tensors" in failed["lme_dim_and_inputs"]
    assert "second time on the same tensors" in failed["nelbo_scalars"]
    assert "does not match how negative_elbo_bound's value changes" in failed["nelbo_encoder_gradients"]
    assert not g.problem


# ------------------------------------------------------------------ the protocol stream
@ALL_ONLY
@pytest.mark.slow
def test_frames_written_by_student_code_fail_only_its_checks(marker):
    g = docker("protocol_frames_in_calls", LME_BER + ("kl_self_is_zero", "sample_given_eps"), timeout=5)
    assert g.score == 0 and not any(r.passed for r in g.results)
    text = outputs(g)
    assert "malformed" in text or "did not answer the request" in text


@ALL_ONLY
def test_forged_load_reply_does_not_crash_the_judge(marker):
    g = docker("protocol_frames_at_import", LME, timeout=5)
    assert g.score <= LME_POINTS and len(g.results) == 2


@ALL_ONLY
def test_libc_writes_to_the_pipes_fail_only_that_call(marker):
    g = docker("ctypes_pipe_write", ONE_BER)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    ber = only(g, "log_bernoulli_with_logits")[0]
    assert "did not answer the request" in ber.output or "malformed" in ber.output, ber.output


@ALL_ONLY
def test_atexit_hooks_that_forge_frames_and_hang_fail_only_that_call(marker):
    g = docker("atexit_hooks", ONE_BER, marker, timeout=5)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    ber = only(g, "log_bernoulli_with_logits")[0]
    assert "did not answer the request" in ber.output or "did not finish within" in ber.output, ber.output


@ALL_ONLY
def test_closed_stdout_and_stderr_cost_only_its_own_prints(marker):
    g = docker("close_stdio", LME_BER)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    assert "OSError: [Errno 9] Bad file descriptor" in only(g, "log_bernoulli_with_logits")[0].output


@ALL_ONLY
def test_a_gigabyte_to_stdout_is_capped(marker):
    g = docker("flood_stdout", ONE_BER)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    assert len(outputs(g)) < 20_000


# ------------------------------------------------------------------ network and the host's files
@ALL_ONLY
def test_no_network(marker):
    check_no_network(marker, "docker")


@pytest.mark.parametrize("name", chosen("write_outside"))
def test_writes_outside_its_directory_do_not_reach_the_host(name, marker):
    """It may write to the container's tmpfs mounts (/work, its own directory, and /tmp; /dev/shm), never
    to the host or the image (read-only root)."""
    g = docker(name, LME, marker)
    assert g.score == 0
    text = outputs(g)
    wrote = ast.literal_eval(text.split("wrote: ")[1].split("\n")[0])
    assert set(wrote) <= {f"{place}/{marker}.txt" for place in ("/work", "/tmp", "/dev/shm")}, wrote
    filled = int(text.split("filled MiB: ")[1].split()[0])
    assert filled <= 72, filled  # /work is a tmpfs of Limits.tmpfs_mb (64) + the submission + 1 MB
    assert marker_files(marker) == []


@pytest.mark.parametrize("name", chosen("fill_disk"))
def test_filling_the_disk_is_bounded_and_leaves_nothing(name, marker):
    g = grade_text(attack(name, marker=marker, fill_mib_each=128), ONE_BER, kind="docker")
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    ber = only(g, "log_bernoulli_with_logits")[0]
    filled = ast.literal_eval(ber.output.split("filled MiB: ")[1].split("}")[0] + "}")
    assert set(filled) == {".", "/tmp", "/var/tmp", "/dev/shm"}, ber.output
    # /work and /tmp: tmpfs of Limits.tmpfs_mb (64; /work + the submission + 1 MB); /dev/shm: Docker's 64 MB;
    # /var/tmp: on the read-only root
    assert filled["."] <= 66 and filled["/tmp"] <= 64 and filled["/dev/shm"] <= 64, filled
    assert filled["/var/tmp"] == 0, filled
    assert marker_files(marker) == []  # and no container: the fixture


# ------------------------------------------------------------------ the worker's own process
@ALL_ONLY
def test_a_thread_bomb_ends_at_the_call_deadline(marker):
    start = time.monotonic()
    g = docker("thread_bomb", ONE_BER, timeout=3)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    assert "did not finish within 3.0 s" in outputs(g)
    assert time.monotonic() - start < 90


@ALL_ONLY
def test_raw_syscalls_change_nothing_and_leave_no_process(marker):
    g = docker("ctypes_syscalls", ONE_BER, marker)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    tried = ast.literal_eval(outputs(g).split("syscalls: ")[1].split("\n")[0])
    assert tried["setuid(0)"] == -1 and tried["ptrace(parent)"] == -1, tried  # EPERM (its parent is not dumpable)
    # its parent is the container's PID 1: kill(1, SIGKILL) succeeds, and the kernel drops the signal (a PID
    # namespace's init gets only the signals it handles); the worker's supervisor lives on
    assert tried["kill(1)"] == 0 and only(g, "log_bernoulli_with_logits")[0].kind == "wrong", tried  # it returned


@ALL_ONLY
def test_ignored_signals_do_not_outlive_the_cpu_limit(marker):
    g = docker("ignore_signals", ONE_BER, marker, timeout=120, cpu_seconds=8)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    ber = only(g, "log_bernoulli_with_logits")[0]
    assert "the worker died while running log_bernoulli_with_logits" in ber.output, ber.output
    assert ber.elapsed < 60, ber.elapsed


@pytest.mark.parametrize("name", chosen("memfd"))
def test_memfd_cannot_hold_more_than_the_memory_limit(name, marker):
    """Docker's seccomp profile allows memfd_create; the container's memory cgroup counts the pages, so the
    call is killed for memory (the process sandbox refuses memfd_create: PermissionError there). Under a
    1 GiB limit rather than hw2's 3 GiB: the same attack, a third of the writing."""
    g = docker(name, ONE_BER, memory_mb=1024)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    ber = only(g, "log_bernoulli_with_logits")[0]
    assert ber.kind == "memory" and "memory limit" in ber.output, (ber.kind, ber.output)


# ------------------------------------------------------------------ the judge's own bounds
@ALL_ONLY
def test_slow_reader_is_given_up_on_at_the_call_deadline(marker):
    g = docker("slow_reader", LME + ("sample_given_eps_distribution",), timeout=2)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "sample_gaussian") == 0
    slow = only(g, "sample_gaussian")[0]
    # the daemon's attach stream buffers little of the 2.4 MB request: the judge's write stalls, as on a pipe
    assert "did not take the request for sample_gaussian within 2.0 s" in slow.output, slow.output
    assert slow.elapsed < 20, slow.elapsed


@ALL_ONLY
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stopping_the_grader_removes_its_container_and_keeps_the_checks_done(sig, marker, open_out_dir):
    out = open_out_dir
    proc = start_hanging_grader(out, marker, sandbox="docker")
    try:
        assert containers(proc.pid), "the worker runs in a container of the grader"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    # after SIGKILL nothing of the grader removes the container: its PID 1 ends it when its stdin closes
    assert wait_until(lambda: not containers(proc.pid), 10), containers(proc.pid)
    assert wait_until(lambda: not marker_processes(marker), 10), marker_processes(marker)
    if sig == signal.SIGTERM:
        check_stopped_by_sigterm(proc, stderr, out, marker)


@ALL_ONLY
def test_a_reply_padded_with_tiny_tensors_fails_that_call_before_decoding(marker):
    g = docker("padded_reply", ("bernoulli_extremes",) + LME)
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    ber = only(g, "log_bernoulli_with_logits")[0]
    assert "the reply holds more than the 10000 tensors the judge accepts (200" in ber.output, ber.output


@ALL_ONLY
def test_restarts_stop_when_the_import_budget_is_spent(marker):
    g = docker("slow_import_crash", LME_BER, import_budget_s=2)
    assert g.score == 0
    died = [r for r in g.results if "the worker died while running" in r.output]
    skipped = [r for r in g.results if r.output.startswith("skipped: importing vae took")]
    assert len(died) in (1, 2) and len(died) + len(skipped) == len(LME_BER), [r.output for r in g.results]
    assert all("more than the 2 s one submission gets" in r.output and r.elapsed < 1 for r in skipped)


@ALL_ONLY
def test_the_seed_does_not_tell_student_code_which_check_calls(monkeypatch, marker):
    monkeypatch.setenv("DGM_COURSE_SECRET", "a course's own secret")
    g = docker("seed_lookup", LME)
    assert g.score == 0, [r.output for r in g.results]


@ALL_ONLY
def test_root_cause_hints_over_a_complete_call_graph(marker):
    """mutual_helpers.py's hint walk is judge-side (counted in test_hostile); graded here end to end."""
    g = docker("mutual_helpers", LME_BER)
    assert g.score == 0
    assert all("Hint: log_mean_exp calls log_bernoulli_with_logits, which also fails" in r.output
               for r in only(g, "log_mean_exp")), only(g, "log_mean_exp")[0].output


@ALL_ONLY
def test_notebook_cell_too_deep_for_python_is_skipped_with_a_note(marker):
    g = grade_notebook(notebook("deep_expression", deep=DEEP), LME_BER, kind="docker")
    assert points(g, "log_mean_exp") == LME_POINTS and points(g, "log_bernoulli_with_logits") == 0
    assert all("code cell 2 is nested too deeply for Python" in r.output for r in only(g, "log_bernoulli_with_logits"))


@pytest.mark.parametrize("name", chosen("kill_same_uid"))
def test_killing_every_process_of_its_uid_reaches_no_other_container(name, marker):
    """Every container's worker runs as uid 65534, so another grader's worker always shares the attacker's
    uid: kill(-1, SIGKILL) reaches only the attacker's own PID namespace."""
    box = DockerSandbox(Limits(memory_mb=1024))
    victim = WorkerClient(box, {"vae.py": REFERENCE.encode()}, "vae")
    try:
        assert victim.module().ok
        g = docker(name, LME[:1])
        assert g.score == 0 and not g.problem
        assert float(victim.call("log_mean_exp", (torch.zeros(3), 0)).value) == 0.0  # still the same worker
        assert victim.restarts == 0
    finally:
        victim.close()
        box.close()


# ------------------------------------------------------------------ uploads refused before student code runs
UPLOADS = {**{f"zip_bomb.py ({bomb})": reason for bomb, reason in ZIP_BOMBS.items()},
           **{f"notebook ({what})": reason for what, reason in HUGE_NOTEBOOKS.items()},
           "deep_expression.py": "nested too deeply for Python's parser"}


@ALL_ONLY
@pytest.mark.parametrize("upload", list(UPLOADS))
def test_uploads_refused_before_grading_leave_no_container(upload, tmp_path):
    """Judge-side, as in the process sandbox; the worker started ahead of the submission (a container) goes."""
    if upload.startswith("zip_bomb.py"):
        path = zip_bomb(upload.split("(")[1].rstrip(")"), tmp_path)
    elif upload.startswith("notebook"):
        path = huge_notebook(upload.split("(")[1].rstrip(")"), tmp_path)
    else:
        path = tmp_path / "vae.py"
        path.write_text(attack("deep_expression", deep=DEEP))
    data, seconds = grade_upload(path, sandbox="docker")
    assert data["score"] == 0 and len(data["tests"]) > 0
    assert all(UPLOADS[upload] in t["output"] for t in data["tests"]), data["tests"][0]["output"]
    assert seconds < 40, seconds
    assert wait_until(lambda: not containers(), 10), containers()


# ------------------------------------------------------------------ every attack is here
GRADED = {  # each file of tests/hostile/ -> what grades it here
    "exit_at_import_sys.py", "exit_at_import_os.py", "infinite_loop_at_import.py", "exit_in_function.py",
    "infinite_loop_in_function.py", "huge_allocation.py", "fork_bomb.py", "forge_results.py",
    "background_rewriter.py", "overwrite_grader_files.py", "read_reference.py", "pickle_wrap.py",
    "monkeypatch_compare.py", "rigged_tensor.py", "forged_reports_inputs_and_gradients.py",
    "protocol_frames_in_calls.py", "protocol_frames_at_import.py", "ctypes_pipe_write.py", "atexit_hooks.py",
    "close_stdio.py", "flood_stdout.py", "network.py", "write_outside.py", "fill_disk.py", "thread_bomb.py",
    "ctypes_syscalls.py", "ignore_signals.py", "memfd.py", "slow_reader.py", "hang_until_killed.py",
    "padded_reply.py", "slow_import_crash.py", "seed_lookup.py", "mutual_helpers.py", "deep_expression.ipynb",
    "kill_same_uid.py", "zip_bomb.py", "many_cells.ipynb", "huge_output.ipynb", "deep_expression.py",
}


def test_every_attack_is_graded_here():
    files = {p.name for p in HOSTILE.iterdir() if p.suffix in (".py", ".ipynb")}
    assert files == GRADED, {"not graded here": sorted(files - GRADED), "gone": sorted(GRADED - files)}
    assert set(DEFAULT) <= {name.removesuffix(".py") for name in GRADED}
