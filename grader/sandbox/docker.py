"""The docker sandbox: one locked-down container of the grading image per worker start.

Each start creates a container (grader/deploy/docker/Dockerfile, built by grader/deploy/image.py) with:
no network (``network_mode=none``), uid 65534, read-only root, tmpfs /tmp and
/work, memory = memory+swap limit, pids limit, 1 CPU, rlimits (CPU seconds,
file size, open files, no core), all capabilities dropped, ``no-new-privileges``,
no logging of its output, and a GPU only when asked. Writable: /work, /tmp
and docker's own /dev/shm (all tmpfs, counted in the memory limit).

The judge talks to the worker through the container's stdin/stdout (a hijacked
attach connection; with ``tty=False`` the daemon multiplexes stdout/stderr
with 8-byte headers, which ``DockerWorker`` strips). The student's files go
the same way: the container's boot reads a length-prefixed tar from stdin,
unpacks it into /work (a tmpfs owned by the worker's uid), then runs the
worker from the image (/opt/dgm/runtime). No bind mounts, so it works with a
remote daemon and needs no file ownership tricks on the host.

Every container carries the labels ``dgm-grade=1``, ``dgm-grade.run=<id>``,
``dgm-grade.pid``/``dgm-grade.host`` and is removed on ``kill``, on
``DockerSandbox.close``, on errors, at interpreter exit and on SIGINT/SIGTERM.
A grader that dies (SIGKILL) removes nothing: its container's PID 1, which runs
the worker as its child, ends the container when the daemon closes its stdin,
even while student code hangs (``SUPERVISE``); containers left all the same
are removed by the next sandbox created on the same host.
"""
from __future__ import annotations

import atexit
import io
import os
import signal
import socket
import struct
import tarfile
import threading
import time
import uuid
from pathlib import Path

from ..deploy.image import DIGEST_LABEL, worker_digest
from .base import (
    WORKER_BOOT,
    WRITE_STALL_S,
    Limits,
    RequestStalled,
    Sandbox,
    SandboxUnavailable,
    Session,
    WorkerGone,
    WorkerHandle,
    WorkerTimeout,
)

# The grading image; DGM_GRADING_IMAGE names another (a benchmark of a changed worker, say).
DEFAULT_IMAGE = os.environ.get("DGM_GRADING_IMAGE") or "dgm-grade:latest"
BUILD_COMMAND = "dgm-grade image build"
RUNTIME = "/opt/dgm/runtime"  # the worker package in the image (grader/deploy/docker/Dockerfile)
WORKDIR = "/work"
UID = 65534  # nobody:nogroup
LABEL = "dgm-grade"

# Runs before WORKER_BOOT in the container: /work <- the tar that precedes the protocol on stdin.
UNPACK = """\
import io, os, tarfile
def _take(n):
    b = bytearray()
    while len(b) < n:
        c = os.read(0, n - len(b))
        if not c:
            raise SystemExit(3)
        b += c
    return bytes(b)
with tarfile.open(fileobj=io.BytesIO(_take(int.from_bytes(_take(8), "big")))) as _t:
    _t.extractall("/work", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
del _t, _take
"""
# Then the container's PID 1 forks the worker and stays behind as its supervisor, so that a container
# never outlives its grader: when the grader is gone (even by SIGKILL, which no hook of it sees) the
# daemon closes the container's stdin, and PID 1 exits at that hang-up, which ends every process of the
# container (auto_remove then removes it). The worker alone would notice only at its next read, never
# while student code hangs. PID 1 exits with the worker too (its exit status, 128 + a signal's number),
# and reaps what the worker leaves to it. Student code (same uid) cannot stop it: signals from inside
# the container reach PID 1 only where it handles them (SIGCHLD, which just wakes it), and it is not
# dumpable (no ptrace, no /proc/1/fd). A worker that reopens its own end of stdin for writing keeps the
# hang-up from coming: then the next Docker sandbox made on the host removes the container
# (``remove_stale``), as before.
SUPERVISE = """\
_worker = os.fork()
if _worker:
    import ctypes, select, signal
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _wake, _woken = os.pipe()
    os.set_blocking(_woken, False)
    signal.set_wakeup_fd(_woken)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    os.close(1)
    os.close(2)
    _poll = select.poll()
    _poll.register(0, 0)  # hang-up only: stdin is the worker's to read
    _poll.register(_wake, select.POLLIN)
    while True:
        while True:
            try:
                _pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(1)
            if not _pid:
                break
            if _pid == _worker:
                _code = os.waitstatus_to_exitcode(_status)
                os._exit(128 - _code if _code < 0 else _code)
        for _fd, _event in _poll.poll():
            if _fd == 0:
                os._exit(137)
            os.read(_wake, 512)
del _worker
"""
BOOT = UNPACK + SUPERVISE + WORKER_BOOT + "\n"


# ---------------------------------------------------------------- daemon access


def _client(timeout: float):
    """A docker.APIClient for the environment's daemon; SandboxUnavailable when there is none."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise SandboxUnavailable("the Docker SDK for Python is not installed (pip install docker)") from None
    if not hasattr(docker, "from_env"):  # a folder named docker shadowing the SDK
        raise SandboxUnavailable("the Docker SDK for Python is not installed (pip install docker)")
    try:
        client = docker.from_env(version="auto", timeout=timeout)
        client.api.ping()
    except (DockerException, OSError) as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SandboxUnavailable(
            f"the Docker daemon at {host} is not reachable ({reason}); start it or grade with --sandbox process"
        ) from None
    return client.api


def check_image(api, image: str) -> None:
    """SandboxUnavailable unless ``image`` exists and holds this checkout's grader/worker."""
    from docker.errors import ImageNotFound

    try:
        info = api.inspect_image(image)
    except ImageNotFound:
        raise SandboxUnavailable(
            f"the grading image {image} is missing: build it with `{BUILD_COMMAND}` "
            f"(`{BUILD_COMMAND} --offline` without registry access)"
        ) from None
    built_from = ((info.get("Config") or {}).get("Labels") or {}).get(DIGEST_LABEL, "unknown")
    if built_from not in ("unknown", worker_digest()):
        raise SandboxUnavailable(
            f"the grading image {image} holds another version of grader/worker "
            f"({built_from}, this checkout {worker_digest()}): rebuild it with `{BUILD_COMMAND}`"
        )


def docker_available(image: str = DEFAULT_IMAGE) -> bool:
    """True when a Docker daemon answers and ``image`` is present and up to date. Fast; never raises."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        api = _client(timeout=3)
        try:
            check_image(api, image)
            return True
        finally:
            api.close()
    except Exception:
        return False


# ---------------------------------------------------------------- cleanup of every container we started

_LIVE: dict[str, object] = {}  # container id -> the APIClient that created it
_LOCK = threading.RLock()  # reentrant: the signal handler may run while the main thread holds it
_HOOKS_INSTALLED = False


def _remove(api, container_id: str) -> None:
    """Force-remove one container; never raises."""
    with _LOCK:
        _LIVE.pop(container_id, None)
    try:
        api.remove_container(container_id, force=True)
    except Exception:
        pass  # already gone, removal in progress, or the daemon went away


def remove_all() -> None:
    """Remove every container this process started and has not removed yet."""
    with _LOCK:
        live = list(_LIVE.items())
    for container_id, api in live:
        _remove(api, container_id)


def _install_hooks() -> None:
    """atexit, and SIGINT/SIGTERM handlers that remove our containers, then do what was done before."""
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(remove_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if previous is None or previous is signal.SIG_IGN:
            continue

        def handler(signum, frame, previous=previous):
            remove_all()
            if callable(previous):
                previous(signum, frame)
            else:  # SIG_DFL: die of the signal as we would have
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handler)


def remove_stale(api) -> int:
    """Remove containers left on this host by graders that no longer run (e.g. killed with SIGKILL)."""
    removed = 0
    try:
        found = api.containers(all=True, filters={"label": [f"{LABEL}=1", f"{LABEL}.host={socket.gethostname()}"]})
    except Exception:
        return 0
    for c in found:
        try:
            pid = int((c.get("Labels") or {}).get(f"{LABEL}.pid", ""))
            os.kill(pid, 0)
            continue  # its grader still runs
        except PermissionError:
            continue
        except (ValueError, ProcessLookupError):
            pass
        _remove(api, c["Id"])
        removed += 1
    return removed


# ---------------------------------------------------------------- the sandbox


def _pack_work(work: Path) -> bytes:
    """The session's work directory as an uncompressed tar: plain files and folders only."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(work.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue
            info = tar.gettarinfo(str(path), arcname=path.relative_to(work).as_posix())
            info.uid = info.gid = UID
            info.uname = info.gname = ""
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(self, limits: Limits, *, gpu: bool = False, image: str = DEFAULT_IMAGE) -> None:
        self.limits, self.gpu, self.image = limits, gpu, image
        self.run_id = uuid.uuid4().hex[:12]
        self.api = _client(timeout=60)
        check_image(self.api, image)
        self._containers: set[str] = set()
        remove_stale(self.api)

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL: "1",
            f"{LABEL}.run": self.run_id,
            f"{LABEL}.pid": str(os.getpid()),
            f"{LABEL}.host": socket.gethostname(),
        }

    @property
    def isolation(self) -> str:
        lim = self.limits
        return (
            f"docker sandbox ({self.image}): uid {UID}, no network, read-only root, tmpfs /work and /tmp, "
            f"{lim.memory_mb} MB memory, {lim.processes} processes, 1 CPU, no capabilities"
            + (", GPU" if self.gpu else ", no GPU")
        )

    def environment(self) -> dict[str, str]:
        env = {
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "DGM_CAPTURE_DIR": "/tmp",
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        if not self.gpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env

    def host_config(self, work_mb: int) -> dict:
        from docker.types import DeviceRequest, LogConfig, Ulimit

        lim, mb = self.limits, 1 << 20
        tmpfs = "rw,nosuid,nodev,noexec,size={}m,uid=%d,gid=%d,mode=0755" % (UID, UID)
        return self.api.create_host_config(
            auto_remove=True,  # also when it ends on its own (stdin closed by a grader that died)
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": tmpfs.format(lim.tmpfs_mb), WORKDIR: tmpfs.format(work_mb)},
            mem_limit=f"{lim.memory_mb}m",
            memswap_limit=f"{lim.memory_mb}m",
            pids_limit=lim.processes,
            oom_score_adj=1000,  # on a host short of memory the kernel kills a worker, not the grader
            nano_cpus=1_000_000_000,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=[
                Ulimit(name="cpu", soft=lim.cpu_seconds, hard=lim.cpu_seconds + 5),
                Ulimit(name="fsize", soft=lim.file_size_mb * mb, hard=lim.file_size_mb * mb),
                Ulimit(name="nofile", soft=lim.open_files, hard=lim.open_files),
                Ulimit(name="core", soft=0, hard=0),
            ],
            log_config=LogConfig(type=LogConfig.types.NONE),
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])] if self.gpu else None,
        )

    def lost(self) -> str:
        """Why the Docker daemon no longer answers ("" while it does): a worker whose daemon stopped died of that."""
        try:
            self.api.ping()
        except Exception as exc:  # the SDK raises requests' and docker's errors, OSError among them
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            return f"the Docker daemon stopped answering ({reason})"
        return ""

    def start(self, session: Session) -> WorkerHandle:
        from docker.errors import DockerException, ImageNotFound

        payload = _pack_work(session.work)
        work_mb = self.limits.tmpfs_mb + (len(payload) + session.reserve_bytes) // (1 << 20) + 1
        _install_hooks()
        try:
            container_id = self.api.create_container(
                self.image,
                command=["python", "-I", "-c", BOOT, RUNTIME],
                user=f"{UID}:{UID}",
                stdin_open=True,  # with detach=False: StdinOnce, so stdin closes when we disconnect
                environment=self.environment(),
                working_dir=WORKDIR,
                hostname="sandbox",
                labels=self.labels,
                host_config=self.host_config(work_mb),
            )["Id"]
        except ImageNotFound:
            check_image(self.api, self.image)  # raises the message saying how to build it
            raise
        except (DockerException, OSError) as exc:
            raise SandboxUnavailable(f"docker could not create the worker container: {exc}") from None
        with _LOCK:
            _LIVE[container_id] = self.api
        self._containers.add(container_id)
        try:
            sock = self.api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 0, "stream": 1})
            self.api.start(container_id)
        except (DockerException, OSError) as exc:
            self._forget(container_id)
            hint = " (--gpu needs the NVIDIA Container Toolkit on the Docker host)" if self.gpu and "gpu" in str(exc) else ""
            raise SandboxUnavailable(f"docker could not start the worker container: {exc}{hint}") from None
        except BaseException:
            self._forget(container_id)
            raise
        worker = DockerWorker(self, container_id, sock)
        try:
            worker.write(len(payload).to_bytes(8, "big") + payload, time.monotonic() + WRITE_STALL_S)
        except (WorkerGone, WorkerTimeout):
            pass  # the container died at once; the first read reports it
        return worker

    def _forget(self, container_id: str) -> None:
        self._containers.discard(container_id)
        _remove(self.api, container_id)

    def close(self) -> None:
        """Remove every container this sandbox started. Idempotent."""
        for container_id in list(self._containers):
            self._forget(container_id)

    def __enter__(self) -> "DockerSandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DockerWorker(WorkerHandle):
    """A worker in a container, reached through a hijacked attach connection."""

    def __init__(self, sandbox: DockerSandbox, container_id: str, sock) -> None:
        self.sandbox, self.container_id = sandbox, container_id
        self._sock = sock  # keeps the HTTP response (and so the connection) alive
        self._raw = getattr(sock, "_sock", sock)  # the socket under docker-py's SocketIO
        self._pending = bytearray()  # received, not yet demultiplexed
        self._out = bytearray()  # stdout payload, not yet returned
        self._stream = 0  # stream of the current multiplexed frame
        self._left = 0  # its payload bytes still to come
        self._eof = False
        self._dead = False

    def write(self, data: bytes, deadline: float) -> None:
        """Send all of ``data`` by ``deadline``; RequestStalled else (see PipeWorker.write)."""
        if self._dead:
            raise WorkerGone("the worker was killed")
        view = memoryview(data)
        try:
            while view:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RequestStalled
                self._raw.settimeout(left)
                view = view[self._raw.send(view[: 1 << 20]) :]
        except TimeoutError:
            raise RequestStalled from None
        except OSError:
            raise WorkerGone("the container exited") from None

    def read_some(self, max_bytes: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while not self._out:
            if self._eof or self._dead:
                return b""
            try:
                self._raw.settimeout(max(0.0, deadline - time.monotonic()))  # 0: just what is there
                chunk = self._raw.recv(1 << 16)
            except (TimeoutError, BlockingIOError):
                raise WorkerTimeout from None
            except OSError as exc:
                if type(exc).__name__ == "SSLWantReadError":
                    raise WorkerTimeout from None
                chunk = b""
            if not chunk:
                self._eof = True
            else:
                self._demux(chunk)
        data = bytes(self._out[:max_bytes])
        del self._out[:max_bytes]
        return data

    def _demux(self, chunk: bytes) -> None:
        """Keep the payload of stdout frames (stream 1); drop the rest."""
        buf = self._pending
        buf += chunk
        pos = 0
        while pos < len(buf):
            if self._left == 0:
                if len(buf) - pos < 8:
                    break
                self._stream = buf[pos]
                (self._left,) = struct.unpack_from(">I", buf, pos + 4)
                pos += 8
                continue
            take = min(self._left, len(buf) - pos)
            if self._stream == 1:
                self._out += buf[pos : pos + take]
            pos += take
            self._left -= take
        del buf[:pos]

    def killed_for(self) -> str:
        try:
            state = self.sandbox.api.inspect_container(self.container_id)["State"]
        except Exception:  # gone already, or the daemon does not answer
            return ""
        return "memory: the container reached its memory limit and was killed" if state.get("OOMKilled") else ""

    def kill(self) -> None:
        if self._dead:
            return
        self._dead = True
        self.sandbox._forget(self.container_id)
        for s in (self._sock, self._raw):
            try:
                s.close()
            except Exception:
                pass

