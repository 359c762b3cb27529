"""What the worker does to itself before torch and student code: load the judge's seccomp filter.

The filter (classic BPF, built judge-side by grader/sandbox/seccomp.py) lies in the runtime
folder as ``seccomp.bpf``. Loading it needs no privilege: ``no_new_privs`` first, then
``PR_SET_SECCOMP``. It binds this thread and everything started after it, which is all of the
worker (torch's threads and student code come later), and cannot be undone.
"""
from __future__ import annotations

import ctypes
import os

FILTER_FILE = "seccomp.bpf"
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def load_filter(path: str) -> bool:
    """Load the BPF filter at ``path`` on this process; False when there is none. OSError if the
    kernel refuses it (the worker then must not run student code)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    count = len(data) // ctypes.sizeof(SockFilter)
    program = (SockFilter * count).from_buffer_copy(data)
    fprog = SockFprog(count, ctypes.cast(program, ctypes.POINTER(SockFilter)))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) refused")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) refused")
    return True


def confine(runtime: str) -> None:
    """Load ``<runtime>/seccomp.bpf`` if the judge put one there; exit (no student code runs) if it fails."""
    try:
        load_filter(os.path.join(runtime, FILTER_FILE))
    except OSError as exc:
        raise SystemExit(f"dgm worker: the seccomp filter could not be loaded: {exc}")
