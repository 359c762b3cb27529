"""The local backend: ``workers`` submissions at a time on this machine, each in a child of its own.

Threads only wait here; the grading happens in the children (job.grade_job), so a pool of
threads is all it takes. Outcomes are handed to ``done`` in this (the calling) thread, one at
a time, so the driver writes files without locks. Ctrl-C sets ``cancel``: the children in
flight are killed, queued submissions never start, and the KeyboardInterrupt goes on up.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable

from .job import JobOutcome, JobSpec, grade_job


def run_local(specs: list[JobSpec], *, workers: int, deadline_s: float,
              started: Callable[[JobSpec], None], done: Callable[[JobSpec, JobOutcome], None]) -> None:
    """Grade ``specs``, ``workers`` at a time; ``started``/``done`` are called in this thread."""
    cancel = threading.Event()
    queue = list(specs)
    running: dict[Future, JobSpec] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dgm-batch") as pool:
        try:
            while queue or running:
                while queue and len(running) < workers:
                    spec = queue.pop(0)
                    running[pool.submit(grade_job, spec, deadline_s=deadline_s, cancel=cancel)] = spec
                    started(spec)
                finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(running.pop(future), future.result())
        except BaseException:
            cancel.set()  # the children in flight die; their students are graded on the next run
            raise
