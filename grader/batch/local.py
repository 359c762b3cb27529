"""The local backend: ``workers`` submissions at a time on this machine, each in a child of its own.

Threads only wait here; the grading happens in the children (job.grade_job), so a pool of
threads is all it takes. Outcomes are handed to ``done`` in this (the calling) thread, one at
a time, so the driver writes files without locks. Ctrl-C sets ``cancel``: the children in
flight are killed, queued submissions never start, and the KeyboardInterrupt goes on up.

While submissions are left, the next child is already started and preparing (job.WarmChild:
the judge's imports, the checks, a standby worker), so a slot that frees up starts grading at
once. One at a time: each holds a judge and a worker in memory (about 0.7 GB on the CPU). By
default only where a core is spare (more cores than workers): with every core grading, the
waiting child's imports take CPU from the children grading (benchmarks/results.md: 8 students,
2 workers on 2 cores, 1.09x slower warm than cold).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable

from .job import JobOutcome, JobSpec, Prepared, WarmChild, grade_job


def run_local(specs: list[JobSpec], *, workers: int, deadline_s: float,
              started: Callable[[JobSpec], None], done: Callable[[JobSpec, JobOutcome], None],
              warm_start: bool | None = None) -> None:
    """Grade ``specs``, ``workers`` at a time; ``started``/``done`` are called in this thread;
    ``warm_start``: keep the next child started (see the module docstring; None: where a core is spare)."""
    if warm_start is None:
        warm_start = (os.cpu_count() or 1) > workers
    cancel = threading.Event()
    queue = list(specs)
    running: dict[Future, JobSpec] = {}
    warm: WarmChild | None = None  # the next child, started before a slot is free
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dgm-batch") as pool:
        try:
            while queue or running:
                while queue and len(running) < workers:
                    spec = queue.pop(0)
                    child, warm = warm, None
                    running[pool.submit(grade_job, spec, deadline_s=deadline_s, cancel=cancel, child=child)] = spec
                    started(spec)
                if queue and warm is None and warm_start:
                    warm = WarmChild(Prepared.of(queue[0]))
                finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(running.pop(future), future.result())
        except BaseException:
            cancel.set()  # the children in flight die; their students are graded on the next run
            raise
        finally:
            if warm is not None:
                warm.close()
