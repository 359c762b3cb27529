"""The process sandbox: a worker as a local process under rlimits, jailed when root.

Always: scrubbed environment, the session's work directory as cwd, rlimits
(address space, CPU seconds, file size, open files, processes), Python in
isolated mode (``-I``), a new session so the whole group can be killed, and
the judge's seccomp filter, which the worker loads on itself before torch
and student code (seccomp.py; it needs no privilege).

As root, the best jail that works here (``jail_kind`` tries each once):

1. bubblewrap (``bwrap``): an allow-listed file system. The worker sees /usr,
   the interpreter's own folders (its prefixes and sys.path) read-only, with
   the grader's packages covered wherever they are installed, its runtime
   (read-only), fresh size-limited /tmp, /var/tmp and /dev/shm, a private
   /proc and a minimal /dev; nothing else of the host: no other checkout,
   wheel or build folder, no /home, /srv or /etc beyond the linker's cache.
   New network (no interface up), PID, IPC and UTS namespaces.
2. unshare (util-linux), where bubblewrap is missing: the host's file system
   minus a deny list. The grader's own packages and every other directory of
   the project checkout (``.git`` holds the reference too) except the
   interpreter's venv are covered by empty tmpfs mounts; /tmp, /var/tmp,
   /dev/shm and /run/lock are fresh, small tmpfs mounts; same namespaces.
   PID 1 of the namespace is a root shell that waits for the worker (it does
   not ``exec`` it): the student cannot signal it or move it out of the
   process group the judge kills, and when it dies the kernel kills
   everything left in the namespace (double-forked, setsid'd or not).
   (bubblewrap's own PID 1 does the same.)

In both, the worker runs as a uid of its own per worker slot, with no
capabilities and ``no_new_privs`` (``setpriv``), in a copy of the student's
files on its private /tmp (JAIL_WORK), so it can write nothing to the
host's disks and everything it writes vanishes with it. ``--gpu`` keeps the
unshare jail (GPU device files are not in bubblewrap's allow-list yet).

Memory: a memory cgroup per worker at the assignment's limit where the
host lets root make one (cgroup.py; cgroup v1 here), which counts what the
address-space limit does not (tmpfs pages, buffers).

The worker never outlives the grader, even one killed with SIGKILL: the
process the judge starts gets ``PR_SET_PDEATHSIG`` (SIGKILL when the grader
dies). Jailed, that process is ``bwrap`` (``--die-with-parent``) or ``unshare``
(``--kill-child``), which pass the same to the namespace's PID 1; without the jail, ``setpriv --pdeathsig keep``
carries it across the change of uid (which would clear it).

Root where no jail can run (no bwrap/unshare/setpriv, or a container whose
seccomp profile refuses namespaces: ``jail_kind`` tries once and caches the
answer): the worker still drops to its own uid (but shares the network, /tmp
and the process table), which ``isolation`` says, with the reason.
Not root (a student's laptop, Colab): the worker runs as the calling user,
which ``isolation`` says, and the report shows.

Memory (``MemoryWatchdog``): the worker starts with ``oom_score_adj`` 1000, so
the kernel's OOM killer takes it before the judge; as root, a thread of the
judge also sums the resident memory of every process of the worker's uid and
kills them all when the sum passes the worker's limit, or when the memory
cgroup the judge runs in (a Gradescope container) is about to be full.
Ending a worker as root ends every process of its uid (``kill_uid``): a
double-forked, setsid'd child included, jailed or not, and removes what the
uid left in the shared scratch dirs.

Worker uids (as root): each sandbox claims one of UID_COUNT uids from
UID_BASE for its life, so graders running at once never share one (a
shared uid would let one submission signal or read another's worker). A
claim is an exclusive ``flock`` on ``/var/lib/dgm-grade/uids/<uid>.lock``
(root's only), held open until ``close`` or the grader's exit (the kernel
drops it even after SIGKILL); a uid any process still runs as is skipped.
The search starts at the slot (default: the grader's pid) and wraps around.
"""
from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import importlib.util
import os
import re
import resource
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..worker.confine import FILTER_FILE
from .base import ROOT_SESSIONS, WORKER_BOOT, Limits, PipeWorker, Sandbox, SandboxUnavailable, Session, WorkerHandle
from .cgroup import WorkerCgroup, cgroup_probe
from .seccomp import checked_filter

# Grader directories a jailed worker must not see (covered by tmpfs).
_PROJECT = Path(__file__).resolve().parents[2]
HIDDEN_NAMES = ("grader", "reference", "assignments", "tests", "examples")


# World-writable directories: each gets a fresh, empty tmpfs in the worker's namespace.
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# A jailed worker's cwd, HOME and TMPDIR: a copy of the session's work directory on
# the private /tmp, so everything it writes is size-limited and vanishes with it.
JAIL_WORK = "/tmp/work"


def interpreter_binds(scratch: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Interpreter prefixes living under a scratch dir, each with a host directory to park it on.

    The jail covers scratch dirs with tmpfs; a venv under /tmp (a CI clone in
    /tmp, say) would vanish with it. Such a prefix is bind-mounted onto a
    parking directory first and bound back, read-only, after the tmpfs is up.
    """
    binds = []
    for prefix in sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}):
        if any(prefix == d or prefix.startswith(d.rstrip("/") + "/") for d in scratch):
            name = hashlib.sha256(prefix.encode()).hexdigest()[:12]
            binds.append((prefix, ROOT_SESSIONS.parent / "interpreters" / name))
    return binds


# bubblewrap's allow-list: what a jailed worker sees besides its runtime and its files. Read-only:
# /usr, the interpreter's prefixes (a venv, pyenv's or conda's folder), the dynamic linker's cache,
# the CPU topology (torch reads it). Writable: only the scratch dirs, fresh and size-limited.
HOST_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")
READ_ONLY_TRY = ("/sys/devices/system/cpu",)
SUBMISSION = "/run/dgm/submission"  # the session's work dir, read-only: copied to JAIL_WORK inside


@functools.lru_cache(maxsize=None)
def worker_sys_path() -> tuple[str, ...]:
    """sys.path of the worker's interpreter: ``python -I`` (no PYTHONPATH, cwd or user site),
    so only the interpreter's own libraries and the folders its .pth files add."""
    try:
        run = subprocess.run([sys.executable, "-I", "-c", "import sys; print('\\n'.join(sys.path))"],
                             capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env={})
        return tuple(line for line in run.stdout.splitlines() if line)
    except (OSError, subprocess.TimeoutExpired):
        return ()


def interpreter_roots() -> list[str]:
    """The folders the worker's interpreter and its libraries live in, outside /usr: its prefixes
    (as named and resolved) and its sys.path, but nothing of the project checkout except the venv
    inside it."""
    roots = set()
    for prefix in (sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))):
        roots |= {os.path.abspath(prefix), os.path.realpath(prefix)}
    venv = os.path.realpath(sys.prefix)
    for entry in worker_sys_path():
        path = os.path.realpath(entry)
        in_project = path == str(_PROJECT) or path.startswith(str(_PROJECT) + "/")
        if os.path.isdir(path) and (not in_project or path.startswith(venv + "/")):
            roots.add(path)
    roots = {r for r in roots if r != "/" and r != "/usr" and not r.startswith("/usr/")}
    return sorted(r for r in roots if not any(r.startswith(o.rstrip("/") + "/") for o in roots))


def bwrap_command(*, runtime: Path, work: Path, scratch_mb: dict[str, int], inner: str) -> list[str]:
    """bubblewrap around ``sh -c inner`` (run as root inside, no network, own PID/IPC/UTS namespaces)
    with the allow-listed file system above; the grader's packages covered wherever they lie in it."""
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "dgm-worker", "--ro-bind", "/usr", "/usr"]
    for link in HOST_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        args += ["--perms", "1777", "--size", str(scratch_mb[d] << 20), "--tmpfs", d]
    binds = interpreter_roots() + [str(runtime)]
    mount_points = binds + [SUBMISSION, *ETC_FILES, *READ_ONLY_TRY]
    parents = sorted({str(a) for b in mount_points for a in Path(b).parents if str(a) != "/"},
                     key=lambda a: a.count("/"))
    for d in parents:  # (bubblewrap would make them 0700: the worker could not pass through)
        args += ["--perms", "0755", "--dir", d]
    for path in [*ETC_FILES, *READ_ONLY_TRY]:
        args += ["--ro-bind-try", path, path]
    for b in binds:
        args += ["--ro-bind", b, b]
    for hidden in hidden_paths():
        if any(str(hidden) == b or str(hidden).startswith(b.rstrip("/") + "/") for b in binds + ["/usr"]):
            args += ["--size", str(1 << 20), "--tmpfs", str(hidden)]
    args += ["--ro-bind", str(work), SUBMISSION, "--chdir", "/", "--", "/bin/sh", "-c", inner]
    return args


def hidden_paths() -> list[Path]:
    """Directories of the grader and its assignments, wherever they are installed.

    Also every other directory of the project checkout (``.git``, caches,
    docker/, ...) except the one holding the running interpreter's venv.
    """
    import assignments

    paths = {Path(__file__).resolve().parents[1], Path(assignments.__file__).resolve().parent}  # grader/, assignments/
    try:
        import reference  # absent from the student bundle
    except ImportError:
        pass
    else:
        paths.add(Path(reference.__file__).resolve().parent)
    paths |= {p for p in (_PROJECT / n for n in HIDDEN_NAMES) if p.is_dir()}
    prefix = Path(sys.prefix).resolve()
    if (_PROJECT / "pyproject.toml").is_file():  # a checkout, not an installed package
        for p in _PROJECT.iterdir():
            if p.is_dir() and not p.is_symlink() and p.resolve() != prefix and p.resolve() not in prefix.parents:
                paths.add(p.resolve())
    # never cover what the worker needs to run: the interpreter, its libraries, the sessions
    keep = {prefix, Path(sys.base_prefix).resolve(), ROOT_SESSIONS}
    return sorted(p for p in paths if not any(k == p or p in k.parents for k in keep))


# What each jail needs, tried once per process (``probe``). bubblewrap: its namespaces, a tmpfs
# and setpriv inside; the unshare jail: the namespaces, a mount inside them, and setpriv.
DROP_PROBE = "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs true"
BWRAP_PROBE = ["bwrap", "--die-with-parent", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
               "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
               "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--size", "1048576",
               "--tmpfs", "/tmp", "--", "/usr/bin/sh", "-c", DROP_PROBE]
PROBE = ["unshare", "--net", "--pid", "--mount-proc", "--mount", "--ipc", "--uts", "--fork", "--kill-child",
         "sh", "-c", f"mount -t tmpfs -o size=1m none /tmp && exec {DROP_PROBE}"]
PROBE_TIMEOUT_S = 30


def _try(command: list[str], tools: tuple[str, ...]) -> str:
    """Run a probe: "" when it worked, else one line saying why not."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found"
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                             env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the probe failed ({type(exc).__name__})"
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
        return f"the kernel refused the namespaces ({last[:200]})"
    return ""


@functools.lru_cache(maxsize=None)
def probe(kind: str) -> str:
    """Whether the jail ``kind`` ("bwrap" or "unshare") works here: "" or why not (cached)."""
    if kind == "bwrap":
        return _try(BWRAP_PROBE, ("bwrap", "setpriv"))
    return _try(PROBE, ("unshare", "setpriv"))


@functools.lru_cache(maxsize=None)
def jail_kind() -> tuple[str, str]:
    """(the jail that works here: "bwrap", "unshare" or "", why the better ones do not).

    Having the tools is not enough: in a container with Docker's default
    capabilities and seccomp profile (Gradescope's, say) they exist and the
    kernel refuses the namespaces. So each probe runs the same steps a
    jailed worker's start runs, and the sandbox falls back when they fail,
    saying what held.
    """
    if os.geteuid() != 0:
        return "", "not root"
    bwrap = probe("bwrap")
    if not bwrap:
        return "bwrap", ""
    bwrap = f"bubblewrap: {bwrap}"
    unshare = probe("unshare")
    if not unshare:
        return "unshare", bwrap
    return "", f"{bwrap}; unshare: {unshare} (install bubblewrap and util-linux)"


def clear_probes() -> None:
    """Forget what the probes found, so the next sandbox probes again (the tests change the probes)."""
    probe.cache_clear()
    jail_kind.cache_clear()


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: a forked child must not load libraries
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    """In a child before exec: ``signum`` when the thread that forked it dies; exit now if the parent is gone."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent:  # it died before the prctl: nobody would kill us
        os._exit(1)


@functools.lru_cache(maxsize=None)
def setpriv_keeps_pdeathsig() -> bool:
    """Whether this setpriv has ``--pdeathsig`` (util-linux 2.33 and later)."""
    try:
        return "--pdeathsig" in subprocess.run(["setpriv", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


UID_BASE, UID_COUNT = 61000, 4000
UIDS_DIR = ROOT_SESSIONS.parent / "uids"


def uids_in_use() -> set[int]:
    """The real uids of every process on the host."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            line = next(ln for ln in status.read_text().splitlines() if ln.startswith("Uid:"))
            found.add(int(line.split()[1]))
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return found


def claim_uid(slot: int) -> tuple[int, int]:
    """(uid, the fd holding its lock): the first free worker uid from ``slot`` on (see the module docstring)."""
    UIDS_DIR.parent.mkdir(mode=0o711, exist_ok=True)
    UIDS_DIR.mkdir(mode=0o700, exist_ok=True)
    busy = uids_in_use()
    for i in range(UID_COUNT):
        uid = UID_BASE + (slot + i) % UID_COUNT
        if uid in busy:
            continue
        fd = os.open(UIDS_DIR / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return uid, fd
    raise SandboxUnavailable(f"all {UID_COUNT} worker uids from {UID_BASE} are in use")


def can_jail() -> bool:
    """True when a jail works here: root, bubblewrap or unshare, setpriv, and namespaces the kernel allows."""
    return bool(jail_kind()[0])


def torch_is_gpu_build() -> bool:
    """Whether the torch workers import is a CUDA or ROCm build, read from its version.py (without
    importing torch: the CLI starts a worker before it imports torch itself)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        return False
    found = re.findall(r"^(cuda|hip)\s*(?::[^=]*)?=\s*(.+?)\s*$", text, re.M)
    return any(value != "None" for _, value in found)


class ProcessSandbox(Sandbox):
    name = "process"

    def __init__(self, limits: Limits, *, gpu: bool = False, slot: int | None = None) -> None:
        self._uid_lock: int | None = None
        self.limits = limits
        self.gpu = gpu
        self.jail, self.jail_note = jail_kind()
        if gpu and self.jail == "bwrap":
            # The GPU's device files and driver state are not in bubblewrap's allow-list (not yet
            # tried on a GPU host): --gpu keeps the deny-list jail, which was.
            self.jail, self.jail_note = ("unshare", "--gpu") if not probe("unshare") else ("", "--gpu: " + probe("unshare"))
        self.jailed = bool(self.jail)
        # A CUDA (or ROCm) build of torch maps gigabytes of libraries at import, even on the CPU: RLIMIT_AS
        # cannot hold it (a student's torch from PyPI, Colab's); the cgroup and the watchdog bound memory then.
        self.address_limit = "" if gpu else ("a CUDA build of torch" if torch_is_gpu_build() else "on")
        # --gpu: CUDA maps gigabytes of libraries, which a cgroup would count; not tried on a GPU host yet
        self.cgroup_note = "--gpu" if gpu else cgroup_probe()
        slot = os.getpid() if slot is None else slot
        if os.geteuid() == 0:
            self.uid, self._uid_lock = claim_uid(slot)
        else:  # the worker runs as us: the uid is not used
            self.uid = UID_BASE + slot % UID_COUNT

    def close(self) -> None:
        """Give the worker uid back (idempotent; also at exit, however the grader ends)."""
        if self._uid_lock is not None:
            os.close(self._uid_lock)
            self._uid_lock = None

    def __del__(self) -> None:
        self.close()

    @property
    def isolation(self) -> str:
        bpf, why = checked_filter(self.gpu)
        text = self._isolation() + (", seccomp filter on" if bpf else f", no seccomp filter ({why})")
        if self.address_limit not in ("on", ""):
            text += f", no address-space limit ({self.address_limit})"
        if self.cgroup_note:
            return text + f", no memory cgroup ({self.cgroup_note}: the judge's watchdog bounds resident memory)"
        return text + f", memory cgroup of {self.limits.memory_mb} MB"

    def _isolation(self) -> str:
        if self.jail == "bwrap":
            return (
                f"process sandbox (bubblewrap): uid {self.uid}, no network, private PID/IPC namespaces, "
                "an allow-listed file system (the interpreter read-only, no grader files), private /tmp, rlimits on"
            )
        if self.jail == "unshare":
            return (
                f"process sandbox (unshare; bubblewrap not used: {self.jail_note}): uid {self.uid}, no network, "
                "private PID/mount namespaces, grader files hidden, private /tmp, rlimits on"
            )
        if os.geteuid() == 0:
            return (
                f"process sandbox without namespaces ({self.jail_note}): uid {self.uid} and rlimits on, but student "
                "code shares the network, /tmp and the process table (--sandbox docker isolates more where it runs)"
            )
        return (
            "process sandbox without root: rlimits on, but student code runs as your own user "
            "with your network and files (grade as root or with --sandbox docker for full isolation)"
        )

    def environment(self, session: Session) -> dict[str, str]:
        work = JAIL_WORK if self.jailed else str(session.work)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": work,
            "TMPDIR": work,
            "DGM_CAPTURE_DIR": work,
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "MPLBACKEND": "Agg",
        }
        if self.gpu:
            env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env

    def _drop(self) -> list[str]:
        """setpriv to the worker's uid: no groups, no capabilities, no way back (``no_new_privs``);
        keeping the parent-death signal the start set, where setpriv can."""
        keep = ["--pdeathsig", "keep"] if not self.jailed and setpriv_keeps_pdeathsig() else []
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *keep]

    def command(self, session: Session) -> list[str]:
        # (normalised: "tests/../.venv/bin/python" names a folder the jail does not have)
        python = [os.path.abspath(sys.executable), "-I", "-c", WORKER_BOOT, str(session.runtime)]
        if not self.jailed:
            return self._drop() + python if self.owner and shutil.which("setpriv") else python
        files_mb = session.files_mb()
        sizes = {d: self.limits.tmpfs_mb + (files_mb + 1 if d == "/tmp" else 0) for d in SCRATCH_DIRS}
        uid = self.uid
        # Run as root inside: copy the student's files to the private /tmp, hand them to the worker's
        # uid, then drop to it for good.
        def setup(source: str) -> str:
            return (f"mkdir -m 0700 {JAIL_WORK} && cp -R {source}/. {JAIL_WORK}/ && chown -R {uid}:{uid} {JAIL_WORK} "
                    f"&& cd {JAIL_WORK} && ")

        if self.jail == "bwrap":
            return bwrap_command(runtime=session.runtime, work=session.work, scratch_mb=sizes,
                                 inner=setup(SUBMISSION) + "exec " + shlex.join(self._drop() + python))
        return self._unshare_command(sizes, setup(shlex.quote(str(session.work))), python)

    def _unshare_command(self, sizes: dict[str, int], setup: str, python: list[str]) -> list[str]:
        """The deny-list jail (no bubblewrap): the host's file system minus the grader's folders."""
        binds = interpreter_binds(SCRATCH_DIRS)
        mounts = "".join(f"mount -t tmpfs -o size=1m,mode=0755 none {shlex.quote(str(p))} && " for p in hidden_paths())
        for prefix, park in binds:
            park.mkdir(parents=True, exist_ok=True)
            mounts += f"mount --bind {shlex.quote(prefix)} {shlex.quote(str(park))} && "
        for d in SCRATCH_DIRS:
            if Path(d).is_dir():
                mounts += f"mount -t tmpfs -o size={sizes[d]}m,mode=1777,nosuid,nodev none {d} && "
        for prefix, park in binds:
            p, k = shlex.quote(prefix), shlex.quote(str(park))
            mounts += f"mkdir -p {p} && mount --bind {k} {p} && mount -o remount,bind,ro {p} && "
        # No `exec`: this root shell stays PID 1 of the namespace (see the module docstring).
        inner = f"{mounts}{setup}{shlex.join(self._drop() + python)}; exit $?"
        return ["unshare", "--net", "--pid", "--mount-proc", "--mount", "--ipc", "--uts", "--fork", "--kill-child",
                "sh", "-c", inner]

    @property
    def owner(self) -> tuple[int, int] | None:
        """The (uid, gid) the work directory is given to: only as root without the jail.

        Jailed, the work directory stays root's (0700) and the worker gets a copy (JAIL_WORK);
        not root, the worker runs as us and owns it already.
        """
        return (self.uid, self.uid) if os.geteuid() == 0 and not self.jailed else None

    def start(self, session: Session) -> WorkerHandle:
        bpf, _ = checked_filter(self.gpu)
        if bpf:  # the worker loads it on itself before torch and student code (grader/worker/confine.py)
            (session.runtime / FILTER_FILE).write_bytes(bpf)
            os.chmod(session.runtime / FILTER_FILE, 0o644)
        if self.owner:
            session.give_to(*self.owner)
        elif self.jailed:
            os.chmod(session.work, 0o700)
        limits = self.limits
        address_limit = self.address_limit == "on"
        # setpriv drops the uid (inside the namespace when jailed); without it, preexec does
        drop_to = None if self.jailed or shutil.which("setpriv") else self.owner
        parent = os.getpid()
        group = None if self.cgroup_note else WorkerCgroup(limits.memory_mb << 20)

        def apply_limits() -> None:
            mb = 1 << 20
            if address_limit:  # CUDA cannot live with RLIMIT_AS
                resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * mb, limits.file_size_mb * mb))
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            try:  # the kernel's OOM killer takes the worker first, never the judge
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("1000")
            except OSError:
                pass
            if os.geteuid() == 0:  # per-uid: only meaningful when the worker has a uid of its own
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            if group:  # everything the worker starts is counted there too
                group.join()
            if drop_to:  # root without unshare/setpriv: student code still never runs as root
                os.setgroups([])
                os.setgid(drop_to[1])
                os.setuid(drop_to[0])
            die_with_parent(parent)  # after the uid change, which clears it

        try:
            proc = self._popen(session, apply_limits)
        except BaseException:
            if group:
                group.remove()
            raise
        root = os.geteuid() == 0
        shared = (str(session.work), *SCRATCH_DIRS) if root and not self.jailed else ()
        return ProcessWorker(proc, uid=self.uid if root else None, limits=limits, cgroup=group, shared_dirs=shared)

    def _popen(self, session: Session, apply_limits) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(session),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=session.work,
            env=self.environment(session),
            preexec_fn=apply_limits,
            start_new_session=True,
            close_fds=True,
        )


class ProcessWorker(PipeWorker):
    def __init__(self, proc, *, uid: int | None = None, limits: Limits | None = None,
                 cgroup: WorkerCgroup | None = None, shared_dirs: tuple[str, ...] = ()) -> None:
        super().__init__(proc)
        self.uid = uid  # the worker's own uid (as root): everything of it dies with the worker
        self.cgroup = cgroup
        self.watchdog = None
        if uid is not None and limits:
            # the jail's tmpfs mounts bound what it writes; sharing the host's scratch dirs, the same total does
            disk = DiskWatch(uid, shared_dirs, (limits.tmpfs_mb * len(SCRATCH_DIRS)) << 20) if shared_dirs else None
            # with a memory cgroup (and no disk to watch) the kernel holds the worker to its limit: the watchdog
            # then guards the judge's headroom only, and scanning every process ten times a second would cost a
            # few % of a core for nothing
            interval = MemoryWatchdog.INTERVAL_S * (10 if cgroup and not disk else 1)
            self.watchdog = MemoryWatchdog(self, uid, limits.memory_mb, interval, disk=disk)

    def killed_for(self) -> str:
        if self.watchdog and self.watchdog.fired:
            return self.watchdog.fired
        if self.cgroup and self.cgroup.oom_killed():
            return "memory: its memory cgroup reached the limit and the kernel killed it"
        return ""

    def kill(self) -> None:
        if self.watchdog:
            self.watchdog.stop()
        self.end_process()
        if self.uid is not None:  # everything of its uid: setsid'd leftovers outside the process group too
            kill_uid(self.uid)
        if self.cgroup:
            self.cgroup.remove()


# ---------------------------------------------------------------- every process of a uid, and its memory


def uid_processes(uid: int) -> list[tuple[int, int]]:
    """(pid, resident bytes) of every process whose real or effective uid is ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                status = f.read()
        except OSError:
            continue
        uids = rss = None
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uids = [int(x) for x in line.split()[1:3]]
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
        if uids and uid in uids:
            found.append((int(entry.name), rss or 0))
    return found


KILL_ROUNDS = 50


def kill_uid(uid: int) -> bool:
    """SIGKILL every process of ``uid`` until none is left (as root); True when none is.

    kill(-1) from a process of that uid itself reaches exactly its processes, forks racing
    the kill included; the rounds repeat until /proc shows none. Then the files the uid
    left in the shared scratch dirs (it may share /tmp: the unjailed fallback) are removed.
    """
    if os.geteuid() != 0 or uid == 0:
        return False
    for _ in range(KILL_ROUNDS):
        if not uid_processes(uid):
            break
        try:
            subprocess.run([sys.executable, "-I", "-S", "-c", "import os; os.kill(-1, 9)"], user=uid, group=uid,
                           extra_groups=[], env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        except (OSError, subprocess.SubprocessError):
            for pid, _ in uid_processes(uid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.02)
    remove_files_of(uid)
    return not uid_processes(uid)


def writable_entries(uid: int, dirs: tuple[str, ...], max_visited: int = 1_000_000):
    """What ``uid`` could have written under ``dirs``: for each directory scanned, its entries as
    (DirEntry, stat) pairs, descending into the directories it could write (its own, or world-writable
    ones), each once. A caller may remove what it is given (a removed directory is then skipped). Stops
    after ``max_visited`` entries of anyone's."""
    stack, visited, seen = list(dirs), 0, set()
    while stack and visited <= max_visited:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        visited += len(entries)
        scanned = []
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            scanned.append((e, st))
            if (e.is_dir(follow_symlinks=False) and (st.st_uid == uid or st.st_mode & stat.S_IWOTH)
                    and (st.st_dev, st.st_ino) not in seen):
                seen.add((st.st_dev, st.st_ino))
                stack.append(e.path)
        yield scanned


def remove_files_of(uid: int, dirs: tuple[str, ...] = SCRATCH_DIRS) -> None:
    """Remove what ``uid`` owns in the shared scratch dirs (a disk filled through /tmp), also inside the
    world-writable dirs there that it could write into (/tmp/.X11-unix, say)."""
    for scanned in writable_entries(uid, dirs):
        for e, st in scanned:
            if st.st_uid != uid:
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
            except OSError:
                pass


def cgroup_memory() -> tuple[int, int] | None:
    """(limit, unreclaimable use: anon + shmem) of the memory cgroup we run in, in bytes; None if unlimited."""
    for limit_file, stat_file, keys in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.stat", ("anon", "shmem")),  # v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.stat", ("rss", "shmem")),  # v1
    ):
        try:
            with open(limit_file) as f:
                raw = f.read().strip()
            if raw == "max" or int(raw) >= 1 << 60:
                return None
            used = 0
            with open(stat_file) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name in keys:
                        used += int(value)
            return int(raw), used
        except (OSError, ValueError):
            continue
    return None


class DiskWatch:
    """What a worker's uid has written to the host's scratch dirs, against ``budget`` bytes and
    MAX_FILES files (the fallback without namespaces, where no tmpfs of the jail bounds it).

    Each ``over()`` reads the free space and free inodes of the dirs' file systems (statvfs:
    microseconds). Only when either has fallen by more than what is left of its budget since the
    last count does it count what the uid owns there (``owned``): another process filling the disk
    is not the worker's doing, and is then taken as the new baseline.
    """

    MAX_FILES = 50_000  # files and dirs of the uid: millions of empty files exhaust the inodes, not the bytes

    def __init__(self, uid: int, dirs: tuple[str, ...], budget: int) -> None:
        self.uid, self.dirs, self.budget = uid, tuple(d for d in dirs if os.path.isdir(d)), budget
        self.baseline, self.counted = self._free(), (0, 0)

    def _free(self) -> dict[int, tuple[int, int]]:
        """(free bytes, free inodes) per file system (st_dev) of the dirs."""
        free = {}
        for d in self.dirs:
            try:
                st = os.statvfs(d)
                free[os.stat(d).st_dev] = (st.f_bavail * st.f_frsize, st.f_favail)
            except OSError:
                continue
        return free

    def over(self) -> str:
        """Why the worker is over its budget, or ""."""
        now = self._free()
        fallen = [sum(max(0, self.baseline.get(dev, free)[i] - free[i]) for dev, free in now.items())
                  for i in (0, 1)]  # bytes, inodes
        if self.counted[0] + fallen[0] <= self.budget and self.counted[1] + fallen[1] <= self.MAX_FILES:
            return ""
        size, files = owned(self.uid, self.dirs, self.MAX_FILES)
        if files > self.MAX_FILES:
            return f"the worker made more than {self.MAX_FILES} files in the host's scratch dirs"
        if size > self.budget:
            return (f"the worker wrote {size >> 20} MB to disk ({', '.join(self.dirs)}), over the limit of "
                    f"{self.budget >> 20} MB")
        self.baseline, self.counted = now, (size, files)
        return ""


def owned(uid: int, dirs: tuple[str, ...], max_files: int, max_visited: int = 1_000_000) -> tuple[int, int]:
    """(bytes allocated, entries) of ``uid`` under ``dirs`` (``writable_entries``). Stops after the first
    directory that takes it past ``max_files`` entries of the uid, or after ``max_visited`` of anyone's
    (then the figures are lower bounds)."""
    size = files = 0
    for scanned in writable_entries(uid, dirs, max_visited):
        for e, st in scanned:
            if st.st_uid == uid:
                files += 1
                size += 0 if e.is_dir(follow_symlinks=False) else st.st_blocks * 512
        if files > max_files:
            break
    return size, files


class MemoryWatchdog:
    """Kills a worker (and everything of its uid) when their resident memory passes ``memory_mb``,
    or when the judge's memory cgroup has less than HEADROOM left (the judge must survive), or when
    ``disk`` (without namespaces) finds it over its disk budget. ``fired``: "memory: why" or "disk: why"."""

    INTERVAL_S = 0.1
    HEADROOM = 48 << 20

    def __init__(self, worker: ProcessWorker, uid: int, memory_mb: int, interval: float = INTERVAL_S,
                 *, disk: DiskWatch | None = None) -> None:
        self.worker, self.uid, self.limit, self.interval, self.disk = worker, uid, memory_mb << 20, interval, disk
        self.fired = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dgm-memory-watchdog-{uid}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = sum(r for _, r in uid_processes(self.uid))
            cgroup = cgroup_memory()
            if rss > self.limit:
                self.fired = f"memory: the worker's processes used {rss >> 20} MB, over the limit of {self.limit >> 20} MB"
            elif cgroup and rss and cgroup[1] > cgroup[0] - self.HEADROOM:
                self.fired = f"memory: memory is nearly exhausted ({cgroup[1] >> 20} of {cgroup[0] >> 20} MB in use)"
            elif self.disk and (disk := self.disk.over()):
                self.fired = f"disk: {disk}"
            else:
                continue
            try:
                os.killpg(self.worker.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            kill_uid(self.uid)
            return
