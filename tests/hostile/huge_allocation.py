"""A 4 GiB allocation in one function: that function fails, the worker and the rest go on."""
import math

import torch


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):
    big = torch.ones(1 << 30, dtype=torch.float32)  # 4 GiB, touched
    return big[: x.shape[-1]].sum() * 0
