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
    sweep_stale(parent)
    try:
        group = WorkerCgroup(64 << 20, parent=parent)
        group.remove()
    except OSError as exc:
        return f"cannot make a memory cgroup ({exc.strerror or exc})"
    return ""


def owner_pid(folder: Path) -> int | None:
    """The judge process a worker cgroup belongs to (``dgm-worker-<pid>-<random>``), or None."""
    parts = folder.name.split("-")
    return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None


def sweep_stale(parent: Path) -> None:
    """Remove the worker cgroups of judges that are gone (a grader killed with SIGKILL).

    Only a dead owner's: another judge's cgroup is empty between its mkdir and its worker's join,
    and removing it then would fail that worker's start (seen with parallel graders).
    """
    for stale in parent.glob("dgm-worker-*"):
        pid = owner_pid(stale)
        if pid is not None and Path(f"/proc/{pid}").exists():
            continue
        try:
            stale.rmdir()
        except OSError:  # still has processes
            pass


class WorkerCgroup:
    """One worker's memory cgroup: ``limit`` bytes of memory (and of memory + swap, where counted)."""

    def __init__(self, limit: int, *, parent: Path | None = None) -> None:
        parent = parent or own_memory_cgroup()
        if parent is None:
            raise OSError("no cgroup v1 memory hierarchy")
        self.path = parent / f"dgm-worker-{os.getpid()}-{uuid.uuid4().hex[:12]}"
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

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this cgroup for memory (memory.oom_control's oom_kill count;
        kernels without it: whether the limit was hit)."""
        try:
            control = dict(line.split() for line in (self.path / "memory.oom_control").read_text().splitlines())
            if "oom_kill" in control:
                return int(control["oom_kill"]) > 0
            return int((self.path / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False

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
