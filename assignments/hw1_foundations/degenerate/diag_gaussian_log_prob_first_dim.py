"""Degenerate diag_gaussian_log_prob: right only for D = 1 (uses the first dim and ignores the rest)."""
import math

import torch


def diag_gaussian_log_prob(x, mean, log_var):
    x, mean, log_var = torch.broadcast_tensors(x, mean, log_var)
    x, mean, log_var = x[..., 0], mean[..., 0], log_var[..., 0]
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var))
