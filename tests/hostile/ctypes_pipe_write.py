"""Writes forged protocol frames and garbage through libc's write(2), past Python's file objects.

In log_bernoulli_with_logits: every pipe descriptor of its own (the worker's protocol pipes),
and every /proc/<pid>/fd/<n> it can open for writing (the judge's ends of the pipes, were they
reachable: they are not, the judge runs as root and its descriptors are not the worker's).
The frames claim success with a result; the judge reads the first one, sees that it does not
answer its request, and restarts the worker. It also reports what it reached, in an exception
message nobody reads (the reply is lost).
Honest part: log_mean_exp, 3 points over LME; log_bernoulli_with_logits 0.
"""
import ctypes
import json
import math
import os
import stat
import struct

import torch

libc = ctypes.CDLL(None, use_errno=True)


def frame(header):
    head = json.dumps(header).encode()
    return b"DGM1" + struct.pack(">I", len(head)) + head + struct.pack(">Q", 0)


FORGED = frame({"id": 1, "ok": True, "elapsed": 0.0, "result": 0.0, "output": ""})


def raw_write(fd, data):
    buf = ctypes.create_string_buffer(data, len(data))
    return libc.write(fd, buf, len(data))


def own_pipes():
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISFIFO(os.fstat(int(name)).st_mode):
                fds.append(int(name))
        except OSError:
            pass
    return fds


def other_pipes():
    reached = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            path = f"/proc/{pid}/fd/{name}"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            if raw_write(fd, FORGED) > 0:
                reached.append(path)
            os.close(fd)
    return reached


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    mine = own_pipes()
    for fd in mine:
        raw_write(fd, FORGED)
        raw_write(fd, os.urandom(4096))
    raise RuntimeError(f"own pipes {mine}, other processes' fds reached: {other_pipes()}")
