"""Writes 1 GiB to stdout and 1 GiB to stderr in log_bernoulli_with_logits, with SIGXFSZ ignored.

Both go to the worker's capture file: jailed, it lives on the private /tmp (a tmpfs of
Limits.tmpfs_mb), and RLIMIT_FSIZE (Limits.file_size_mb) stops the file first; the worker
reads back at most 4000 characters of it per reply. With SIGXFSZ ignored the writes fail
with EFBIG instead of killing the worker; the function keeps writing, then returns.
It prints how far it got at import (in the notes) and returns a wrong value.
Honest part: log_mean_exp, 3 points over LME; log_bernoulli_with_logits 0.
"""
import math
import os
import signal

import torch

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
CHUNK = b"x" * (1 << 20)


def flood(fd):
    written = 0
    for _ in range(1024):
        try:
            written += os.write(fd, CHUNK)
        except OSError:
            pass
    return written


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    flooded = flood(1) + flood(2)
    return x.sum(-1) * 0 + flooded
