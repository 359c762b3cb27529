"""An infinite loop in one function: one timeout; its later checks fail without running."""
import math

import torch


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    while True:
        pass
