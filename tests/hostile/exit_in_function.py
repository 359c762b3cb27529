"""os._exit(0) inside one function: only that function's checks lose."""
import math
import os

import torch


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    os._exit(0)
