"""Ignores every signal it can (SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGXCPU, SIGXFSZ, ...) at import.

Then log_bernoulli_with_logits starts a child carrying __MARKER__ (ignored signals stay ignored
across exec) in a session of its own, and spins on the CPU forever. Only SIGKILL ends them:
the CPU limit's hard part (RLIMIT_CPU: SIGXCPU at the soft limit, ignored here, SIGKILL 5 s
later), the call deadline, or the judge ending the worker and everything of its uid.
Honest part: log_mean_exp, 3 points over LME (in a fresh worker); log_bernoulli_with_logits 0.
"""
import math
import signal
import subprocess

import torch

for sig in signal.valid_signals():
    try:
        signal.signal(sig, signal.SIG_IGN)
    except (OSError, ValueError, RuntimeError):  # SIGKILL and SIGSTOP cannot be ignored
        pass


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    subprocess.Popen(["/bin/sh", "-c", "while :; do sleep 1; done", "__MARKER__"], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        pass
