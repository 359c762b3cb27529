"""Degenerate gmm_em_step: hard EM (each point to its most likely component), right only when every
responsibility is 0 or 1: one component (em_one_component) and well-separated clusters (em_separated)."""
import math

import torch


def gmm_em_step(x, log_weights, means, log_vars):
    log_dens = -0.5 * (math.log(2 * math.pi) + log_vars[None] + (x[:, None, :] - means[None]) ** 2
                       * torch.exp(-log_vars[None])).sum(-1)
    hard = torch.nn.functional.one_hot((log_weights + log_dens).argmax(1), means.shape[0]).to(x.dtype)
    counts = hard.sum(0)
    new_means = hard.T @ x / counts[:, None]
    new_vars = (hard[:, :, None] * (x[:, None, :] - new_means[None]) ** 2).sum(0) / counts[:, None]
    return torch.log(counts / x.shape[0]), new_means, torch.log(new_vars)
