"""The worker's seccomp filter: system calls student code has no use for, refused with EPERM.

The judge compiles the filter (libseccomp, through pyseccomp) into classic BPF and puts it in
the session's runtime folder (``seccomp.bpf``); the worker loads it on itself first thing, before
torch and before any student code (grader/worker/main.py). A filter needs no privilege (only
``no_new_privs``), so it holds in every sandbox: bubblewrap, the unshare jail, the own-uid
fallback, a laptop without root, and Docker (on top of Docker's own profile).

What it closes:
- memory outside the address-space limit: ``memfd_create`` and SysV ``shmget`` (pages that are
  not address space, so RLIMIT_AS does not count them);
- the kernel's wider surfaces: namespaces (``unshare``, ``setns``, ``clone`` with a CLONE_NEW*
  flag; ``clone3``, whose flags a filter cannot read, says ENOSYS and glibc falls back to
  ``clone``), mounts, ``ptrace`` and cross-process memory access, BPF, perf, io_uring,
  userfaultfd, keyrings, modules, reboot, clocks, swap.

``--gpu`` keeps ``memfd_create`` (CUDA's driver may use it; not tried on a GPU host yet).
"""
from __future__ import annotations

import errno
import functools
import os
import platform
import subprocess
import sys
import tempfile

# Refused with EPERM.
DENIED = (
    "memfd_create", "memfd_secret", "shmget",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen",
    "fsmount", "fsconfig", "fspick", "mount_setattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "fanotify_init", "open_by_handle_at", "name_to_handle_at",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "syslog", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm",
)
CLONE_NEW_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
GPU_ALLOWED = ("memfd_create",)


def worker_filter(*, gpu: bool = False) -> tuple[bytes, str]:
    """(the filter as BPF bytes, "") or (b"", why there is none here)."""
    if platform.system() != "Linux":
        return b"", "seccomp is Linux's"
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # pyseccomp missing, or libseccomp.so.2 missing
        return b"", f"no libseccomp ({type(exc).__name__}: {exc})"[:200]
    try:
        f = seccomp.SyscallFilter(seccomp.ALLOW)
        refuse = seccomp.ERRNO(errno.EPERM)
        for name in DENIED:
            if gpu and name in GPU_ALLOWED:
                continue
            try:
                f.add_rule(refuse, name)
            except (RuntimeError, ValueError, OSError):
                continue  # not a system call on this architecture (iopl on arm64, ...)
        for bit in range(32):  # clone with any CLONE_NEW* flag
            if CLONE_NEW_FLAGS & (1 << bit):
                f.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, 1 << bit, 1 << bit))
        try:
            f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        except (RuntimeError, ValueError, OSError):
            pass
        with tempfile.TemporaryFile() as out:
            f.export_bpf(out)
            out.seek(0)
            return out.read(), ""
    except Exception as exc:  # noqa: BLE001 - any libseccomp failure: grade without the filter, and say so
        return b"", f"the seccomp filter could not be built ({type(exc).__name__}: {exc})"[:200]


PROBE = """
import os, sys
sys.path.insert(0, sys.argv[1])
from confine import load_filter
load_filter(sys.argv[2])
try:
    os.memfd_create("probe")
except PermissionError:
    print("refused")
"""


@functools.lru_cache(maxsize=None)
def checked_filter(gpu: bool = False) -> tuple[bytes, str]:
    """``worker_filter``, tried once on a throwaway process (the worker's own loader, then a
    memfd_create that must be refused): (BPF, "") when it holds here, else (b"", why not)."""
    bpf, why = worker_filter(gpu=gpu)
    if not bpf:
        return b"", why
    from .. import worker as worker_package

    with tempfile.NamedTemporaryFile(suffix=".bpf") as f:
        f.write(bpf)
        f.flush()
        try:
            run = subprocess.run([sys.executable, "-I", "-c", PROBE, os.path.dirname(worker_package.__file__), f.name],
                                 capture_output=True, text=True, timeout=30, env={})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return b"", f"the seccomp probe failed ({type(exc).__name__})"
    if gpu or run.stdout.strip() == "refused":
        return (bpf, "") if run.returncode == 0 else (b"", f"the kernel refused the filter ({run.stderr.strip()[-200:]})")
    return b"", f"the filter did not hold ({(run.stderr.strip() or run.stdout.strip())[-200:]})"
