"""No sandbox: the worker as a plain subprocess. For benchmarks only (the floor isolation is measured against).

The worker starts exactly as in the process sandbox (``python -I -c WORKER_BOOT``
in the session's work folder, a scrubbed environment, its own process group),
but with no jail, no seccomp filter, no rlimits, no uid of its own: student code
could read and change anything the grader can. ``make_sandbox`` refuses it
unless ``DGM_UNSAFE_NO_SANDBOX=1`` is set, and results.json says it ran.
"""
from __future__ import annotations

import os
import subprocess
import sys

from .base import WORKER_BOOT, PipeWorker, Sandbox, Session, WorkerHandle

# What make_sandbox requires in the environment before it starts an unisolated worker.
UNSAFE_ENV = "DGM_UNSAFE_NO_SANDBOX"


class UnisolatedSandbox(Sandbox):
    name = "none"

    @property
    def isolation(self) -> str:
        return "NO SANDBOX (benchmarking only): student code runs as this user, with this user's files and network"

    def start(self, session: Session) -> WorkerHandle:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(session.work), "TMPDIR": str(session.work),
               "DGM_CAPTURE_DIR": str(session.work), "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
               "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.Popen([os.path.abspath(sys.executable), "-I", "-c", WORKER_BOOT, str(session.runtime)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                cwd=session.work, env=env, start_new_session=True, close_fds=True)
        return _Worker(proc)


class _Worker(PipeWorker):
    def kill(self) -> None:
        self.end_process()
