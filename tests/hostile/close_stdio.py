"""Closes its own stdout and stderr (os.close(1), os.close(2)) at import, then prints.

The worker keeps the protocol on private descriptors and reads what the student printed
from its capture file by path, so closed fds 1 and 2 cost only the student's own prints:
print() raises in the function that calls it. A duplicate of fd 1 is then opened on
/dev/null (fd 1 is the lowest free number) so later prints go nowhere.
Honest part: log_mean_exp, 3 points over LME; log_bernoulli_with_logits prints, and fails.
"""
import math
import os
import sys

import torch

os.close(1)
os.close(2)


def log_mean_exp(x, dim):  # honest
    try:
        print("to a closed stdout", file=sys.stdout, flush=True)
    except (OSError, ValueError):
        pass
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    print("to a closed stdout", flush=True)  # raises OSError (bad file descriptor)
    return -torch.nn.functional.softplus(-logits)
