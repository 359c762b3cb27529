"""A memory cgroup per worker, where the host lets the judge make one.

The address-space rlimit bounds what a worker maps, not what it holds elsewhere (tmpfs pages,
pipe and socket buffers, page cache it dirties); a memory cgroup counts all of it, and the
kernel's OOM killer then ends the worker inside its cgroup, never the judge. The worker's cgroup
is a child of the judge's own (so a container's limit still holds above it), made by root in a
cgroup v1 memory hierarchy mounted writable (this machine and CI). Cgroup v2 would need the judge
to leave its own cgroup first (no processes in a cgroup that delegates controllers), and
Gradescope's container mounts /sys/fs/cgroup read-only: there the judge's memory watchdog
(process.MemoryWatchdog) is the bound, which ``isolation`` says.
"""
from __future__ import annotations

import functools
import os
import time
import uuid
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/memory")


def own_memory_cgroup() -> Path | None:
    """The cgroup v1 memory folder this process is in, or None (cgroup v2, none, unreadable)."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if "memory" in controllers.split(","):
                    folder = V1_ROOT / path.lstrip("/")
                    return folder if (folder / "memory.limit_in_bytes").is_file() else None
    except (OSError, ValueError):
        pass
    return None


@functools.lru_cache(maxsize=None)
def cgroup_probe() -> str:
    """"" when a worker cgroup can be made here (tried once: make one, remove it), else why not."""
    if os.geteuid() != 0:
        return "not root"
    parent = own_memory_cgroup()
    if parent is None:
        return "no writable cgroup v1 memory hierarchy"
    for stale in parent.glob("dgm-worker-*"):  # left by a grader killed with SIGKILL; a busy one stays
        try:
            stale.rmdir()
        except OSError:
            pass
    try:
        group = WorkerCgroup(64 << 20, parent=parent)
        group.remove()
    except OSError as exc:
        return f"cannot make a memory cgroup ({exc.strerror or exc})"
    return ""


class WorkerCgroup:
    """One worker's memory cgroup: ``limit`` bytes of memory (and of memory + swap, where counted)."""

    def __init__(self, limit: int, *, parent: Path | None = None) -> None:
        parent = parent or own_memory_cgroup()
        if parent is None:
            raise OSError("no cgroup v1 memory hierarchy")
        self.path = parent / f"dgm-worker-{uuid.uuid4().hex[:12]}"
        self.path.mkdir(mode=0o755)
        try:
            (self.path / "memory.limit_in_bytes").write_text(str(limit))
            swap = self.path / "memory.memsw.limit_in_bytes"
            if swap.is_file():
                swap.write_text(str(limit))
        except OSError:
            self.remove()
            raise

    @property
    def procs(self) -> str:
        """The file a process writes its pid into to join (root only)."""
        return str(self.path / "cgroup.procs")

    def join(self) -> None:
        """Move the calling process into the cgroup (in the worker's start, before it drops root)."""
        with open(self.procs, "w") as f:
            f.write(str(os.getpid()))

    def remove(self, wait_s: float = 2.0) -> None:
        """Remove the (emptied) cgroup; idempotent. Its processes must be gone first (kill_uid)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # still busy: the last process is being reaped
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
