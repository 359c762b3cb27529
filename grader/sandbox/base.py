"""What every sandbox provides: start a worker over a prepared session directory.

A *session* is a fresh directory holding two things the worker may see:

    <session>/runtime/dgm_worker/   the worker package (grader/worker, copied)
    <session>/work/                 the student's files; the worker's cwd

A sandbox turns a session into a running ``WorkerHandle``: a process (or
container) that speaks grader/worker/protocol.py on its stdin/stdout. The
judge only needs ``write``, ``read`` with a deadline, and ``kill``.
"""
from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import stat
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from .. import worker as worker_package

# How the worker is started inside a session: python -I -c BOOT <runtime dir>
WORKER_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from dgm_worker.main import main; main()"


class SandboxUnavailable(Exception):
    """The sandbox asked for cannot run here (no Docker daemon, no image, no GPU); one line says why."""


class WorkerTimeout(Exception):
    """The worker did not answer before the deadline."""


class RequestStalled(WorkerTimeout):
    """The worker did not take the whole request before the deadline (it reads it too slowly, or not at all)."""


class WorkerGone(Exception):
    """The worker's pipe closed: it exited, crashed or was killed."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one worker (from the assignment config)."""

    memory_mb: int = 2048  # address space (process) / memory limit (docker)
    cpu_seconds: int = 900  # CPU time over the worker's whole life
    file_size_mb: int = 64  # largest file the worker may write
    open_files: int = 256
    processes: int = 256  # threads count too
    tmpfs_mb: int = 64  # docker: size of the writable /tmp
    max_frame_mb: int = 256  # largest response frame the judge accepts


class WorkerHandle(ABC):
    """A running worker: bytes in, bytes out, and a way to end it."""

    @abstractmethod
    def write(self, data: bytes, deadline: float) -> None:
        """Send all of ``data`` by ``deadline`` (``time.monotonic()``); RequestStalled else."""

    @abstractmethod
    def read_some(self, max_bytes: int, timeout: float) -> bytes:
        """Up to max_bytes (at least 1) within ``timeout`` seconds; b"" at EOF; WorkerTimeout else."""

    @abstractmethod
    def kill(self) -> None:
        """End the worker and everything it started; idempotent."""

    def killed_for(self) -> str:
        """Asked when the worker died, before ``kill``: why the sandbox's own limits killed it ("memory: ...")
        or "" when they did not (it crashed or exited by itself)."""
        return ""

    def read_exact(self, n: int, deadline: float) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self.read_some(min(left, 1 << 20), max(0.0, deadline - time.monotonic()))
            if not chunk:
                raise WorkerGone("the worker exited")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


# How long sending the student's files to a fresh container may take (before any student code runs).
WRITE_STALL_S = 30.0


class PipeWorker(WorkerHandle):
    """A worker reached through a pair of pipes (a subprocess.Popen with stdin/stdout)."""

    def __init__(self, proc) -> None:
        self.proc = proc
        self._out = proc.stdout.fileno()
        self._in = proc.stdin.fileno()
        os.set_blocking(self._in, False)  # writes never block the judge (see write)

    def write(self, data: bytes, deadline: float) -> None:
        """Write all of ``data`` by ``deadline``: a worker that reads slowly (student code may
        have patched its reads) is given up on at the deadline, however steady its progress."""
        view = memoryview(data)
        try:
            while view:
                left = deadline - time.monotonic()
                _, ready, _ = select.select([], [self._in], [], max(0.0, left)) if left > 0 else ((), (), ())
                if not ready:
                    raise RequestStalled
                try:
                    view = view[os.write(self._in, view[: 1 << 20]):]
                except BlockingIOError:
                    continue
        except (BrokenPipeError, OSError, ValueError):
            raise WorkerGone("the worker exited") from None

    def end_process(self) -> None:
        """Kill the worker's process group, close its pipes and reap it (what every pipe worker's kill does)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc.wait()

    def read_some(self, max_bytes: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self._out], [], [], timeout)
        if not ready:
            raise WorkerTimeout
        return os.read(self._out, max_bytes)


class Sandbox(ABC):
    """Starts workers. ``name`` goes into results.json; ``isolation`` into the report."""

    name: str

    @abstractmethod
    def start(self, session: "Session") -> WorkerHandle: ...

    @property
    @abstractmethod
    def isolation(self) -> str:
        """One line: what this sandbox enforces on this machine."""

    def lost(self) -> str:
        """Asked when a worker died: why the sandbox itself no longer works ("" when it still does, and the
        worker's death is the submission's doing)."""
        return ""


# Where sessions live when we are root: a root-owned directory outside the
# world-writable /tmp, /var/tmp and /dev/shm (which jailed workers get fresh,
# empty copies of), so no other user can plant or swap files in a session.
ROOT_SESSIONS = Path("/var/lib/dgm-grade/sessions")


def sessions_dir() -> Path | None:
    """The parent of new session directories: ROOT_SESSIONS as root, else the user's temp dir (None).

    DGM_SESSIONS_DIR (as root) puts them elsewhere: run_autograder keeps them on
    /autograder's disk, which it cleans before results.json is written.
    """
    if os.geteuid() != 0:
        return None
    chosen = Path(os.environ.get("DGM_SESSIONS_DIR") or ROOT_SESSIONS)
    for path in (chosen.parent, chosen):
        path.mkdir(mode=0o711, exist_ok=True)
        st = path.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
            raise SandboxUnavailable(f"{path} must be a directory owned by root")
        os.chmod(path, 0o711)  # workers may pass through, not list
    return chosen


def claim_session(parent: Path) -> tuple[Path, int]:
    """A new session folder's path and the fd of its lock (``<folder>.lock`` beside it, flock'd
    until the session is removed or the grader dies, however it dies)."""
    while True:
        root = parent / f"dgm-session-{os.urandom(6).hex()}"
        try:
            fd = os.open(f"{root}.lock", os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        return root, fd


def sweep_stale_sessions(parent: Path) -> list[Path]:
    """Remove the session folders of graders that are gone (killed with SIGKILL, say): those whose
    lock nobody holds. Returns what was removed."""
    removed = []
    for lock in parent.glob("dgm-session-*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a live grader's
        try:
            folder = lock.with_suffix("")
            shutil.rmtree(folder, ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed


class Session:
    """A fresh session directory for one submission (see module docstring).

    ``reserve_bytes``: room to keep in the worker's writable work folder for files that arrive
    after it started (a standby worker's session starts empty: grader/standby.py).
    """

    def __init__(self, files: dict[str, bytes], *, reserve_bytes: int = 0) -> None:
        self.reserve_bytes = reserve_bytes
        parent = sessions_dir() or Path(tempfile.gettempdir())
        sweep_stale_sessions(parent)
        self.root, self._lock = claim_session(parent)
        self.root.mkdir(mode=0o711)
        os.chmod(self.root, 0o711)
        self.runtime = self.root / "runtime"
        self.work = self.root / "work"
        package = Path(worker_package.__file__).parent
        shutil.copytree(package, self.runtime / "dgm_worker", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [self.runtime, *self.runtime.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        self._write_work(files)

    def files_mb(self) -> int:
        """MB the work folder needs in the worker: the files here and the room reserved for later ones."""
        size = sum(f.stat().st_size for f in self.work.rglob("*") if f.is_file()) + self.reserve_bytes
        return size >> 20

    def _write_work(self, files: dict[str, bytes]) -> None:
        """A new work directory holding exactly the student's files."""
        self.work.mkdir()
        for rel, data in files.items():
            target = self.work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def give_to(self, uid: int, gid: int) -> None:
        """Make the work directory the worker user's own, and nobody else's."""
        for path in [self.work, *self.work.rglob("*")]:
            os.lchown(path, uid, gid)
        os.chmod(self.work, 0o700)

    def reset_work(self, files: dict[str, bytes], owner: tuple[int, int] | None) -> None:
        """Put the work directory back to just the student's files (after a worker died)."""
        shutil.rmtree(self.work, ignore_errors=True)
        self._write_work(files)
        if owner:
            self.give_to(*owner)

    def remove(self) -> None:
        """Remove the folder, then its lock (idempotent)."""
        shutil.rmtree(self.root, ignore_errors=True)
        if self._lock is not None:
            Path(f"{self.root}.lock").unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None
