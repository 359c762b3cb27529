"""Fills its work directory, /tmp, /var/tmp and /dev/shm, with SIGXFSZ ignored.

Up to FILL_MIB_EACH MiB per directory (the test picks it; the attack is real, the cap keeps a
test machine's disk safe), in 16 MiB files, stopping at the first error (ENOSPC, EFBIG). Jailed,
the work directory is on the private /tmp and every directory is a tmpfs of Limits.tmpfs_mb:
each fills to about 64 MiB and vanishes with the worker. Without namespaces the work directory
and /tmp are the host's (see the test). Its error message says how many MiB each directory took.
Honest part: log_mean_exp, 3 points over LME (the fill runs in log_bernoulli_with_logits).
"""
import math
import os
import signal

import torch

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
CAP = __FILL_MIB_EACH__
CHUNK = b"x" * (1 << 20)
MARK = "__MARKER__"


def fill(directory):
    total = 0
    for i in range(CAP // 16):
        try:
            with open(os.path.join(directory, f"{MARK}-{i}.bin"), "wb") as f:
                for _ in range(16):
                    total += f.write(CHUNK)
        except OSError:
            break
    return total >> 20


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    filled = {d: fill(d) for d in (".", "/tmp", "/var/tmp", "/dev/shm")}
    raise RuntimeError(f"filled MiB: {filled}")  # in the reply: a print would need room on the full /tmp
