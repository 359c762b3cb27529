"""Holds 3.5 GiB in memfds (os.memfd_create), against a 3 GiB memory limit, then answers correctly.

Pages written to a memfd are neither address space (RLIMIT_AS) nor resident memory of the
process (what the judge's watchdog sums): 60 memfds of 60 MiB each, each under RLIMIT_FSIZE,
under RLIMIT_NOFILE together. What would contain it: a memory cgroup (Docker's), or a seccomp
filter refusing memfd_create (issue 11). log_bernoulli_with_logits holds them (for the rest of
the worker's life) and then returns the right value: it passes unless the worker is stopped.
Honest part: log_mean_exp, 3 points over LME; log_bernoulli_with_logits 0 (the seccomp filter refuses
memfd_create: grader/sandbox/seccomp.py).
"""
import math
import os

import torch
import torch.nn.functional as F

held = []


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    chunk = b"x" * (1 << 20)
    for i in range(60):
        fd = os.memfd_create(f"held-{i}")
        for _ in range(60):
            os.write(fd, chunk)
        held.append(fd)
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)  # right
