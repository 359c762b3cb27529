"""Forges the `load` reply at import: `names` is not a list, then 1 MiB of garbage.

The judge must not crash on the forged reply, and every call after it reads
the stale or garbled stream and fails. log_mean_exp is correct, but the
module sabotages its own worker, so it may score anything from 0 to 4.
"""
import json
import math
import os
import stat
import struct

import torch


def pipes():
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
                fds.append(fd)
        except OSError:
            pass
    return fds


def send(data):
    for fd in pipes():
        try:
            os.write(fd, data)
        except OSError:
            pass


head = json.dumps({"ok": True, "names": 5}).encode()
send(b"DGM1" + struct.pack(">I", len(head)) + head + struct.pack(">Q", 0))
send(os.urandom(1 << 20))


def log_mean_exp(x, dim):
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])
