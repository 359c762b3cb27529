"""The Ray backend: each submission is a Ray task that runs job.grade_job on the node it lands on.

The task gets the submission's bytes (``job.pack``: cluster nodes need not share a disk
with the driver) and returns the three files; the driver writes them exactly as the local
backend's. Each task asks for one CPU (and ``gpus`` GPUs with ``--gpu``; a fraction lets
several students share one), and at most ``workers`` tasks are in flight (default: the
cluster's CPUs), so "running" in the progress means running.

On the node, grading is the same sandboxed grading as anywhere: the process sandbox probes
what the node allows (bubblewrap, namespaces, a cgroup) and falls back as it does in
Gradescope's container; ``--sandbox docker`` needs the grading image on every node.
Ray is an optional extra: ``pip install 'dgm-grade[ray]'``.
"""
from __future__ import annotations

import logging
from typing import Callable

from .job import JobOutcome, JobSpec, grade_job, pack


def _task(spec_json: str, deadline_s: float) -> JobOutcome:
    return grade_job(JobSpec.model_validate_json(spec_json), deadline_s=deadline_s)


def cluster_cpus(address: str | None) -> int:
    """CPUs of the cluster (starting a local Ray when ``address`` is None and none runs)."""
    import ray

    connect(address)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def connect(address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise RuntimeError("the Ray backend needs Ray: pip install 'dgm-grade[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=False)


def run_ray(specs: list[JobSpec], *, workers: int | None, deadline_s: float, address: str | None, gpus: float,
            started: Callable[[JobSpec], None], done: Callable[[JobSpec, JobOutcome], None]) -> None:
    """Grade ``specs`` as Ray tasks, at most ``workers`` (default: the cluster's CPUs) at a time."""
    import ray

    limit = workers or cluster_cpus(address)
    connect(address)
    remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_task)
    queue = list(specs)
    running: dict = {}
    try:
        while queue or running:
            while queue and len(running) < limit:
                spec = queue.pop(0)
                try:
                    shipped = spec.model_copy(update={"packed": pack(spec.path)})
                except (OSError, ValueError) as exc:
                    started(spec)
                    done(spec, JobOutcome(spec.student, error=f"not sent to the cluster: {exc}"))
                    continue
                running[remote.remote(shipped.model_dump_json(), deadline_s)] = spec
                started(spec)
            if not running:
                continue
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                spec = running.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task or its node died
                    outcome = JobOutcome(spec.student, error=f"the Ray task failed: {str(exc).splitlines()[0][:300]}")
                done(spec, outcome)
    except BaseException:
        for ref in running:
            ray.cancel(ref, force=True)  # the task's child gets SIGTERM with it (job.grade_job: die_with_parent)
        raise
