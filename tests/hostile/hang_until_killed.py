"""Hangs in negative_elbo_bound, with a child process, until the grader is stopped.

The test sends SIGTERM (or SIGKILL) to `dgm-grade grade` while the call hangs. Neither the
worker, its child nor the process sandbox's namespace shell may outlive the grader; after
SIGTERM, results.json holds the checks done so far and says why the rest did not run.
log_mean_exp is honest (its public checks, run before the hang, keep their points); every
other function is missing (its checks fail at once). The child carries __MARKER__ on its
command line so the test can look for it.
"""
import math
import subprocess
import time

import torch


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def negative_elbo_bound(*args, **kwargs):
    subprocess.Popen(["/bin/sh", "-c", "sleep 600; exit 0", "__MARKER__"])
    while True:
        time.sleep(1)
