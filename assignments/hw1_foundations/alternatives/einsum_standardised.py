"""Alternative (style): einsum, standardised coordinates, and softmax responsibilities in exp space.

Written from the handout alone. Box-Muller via sin(theta) = cos(theta - pi/2);
the covariance as an einsum of the centred data; log-densities through the
standardised residual z = (x - mean) exp(-log_var / 2) and -sum log std; the
mixture reduces with ``torch.logsumexp`` over a table built by einsum; the EM
step takes responsibilities with ``torch.softmax`` (max-shifted exp space) and
its M-step with einsum, new log-weights as log(N_k) - log(sum_k N_k).
"""
from __future__ import annotations

import math

import torch

HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def box_muller(u1: torch.Tensor, u2: torch.Tensor):
    radius = (-2.0 * u1.log()).sqrt()
    angle = 2.0 * math.pi * u2
    return radius * angle.cos(), radius * (angle - 0.5 * math.pi).cos()


def gaussian_mle(x: torch.Tensor):
    mean = x.mean(0)
    centred = x - mean
    return mean, torch.einsum("ni,nj->ij", centred, centred) / x.shape[0]


def diag_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    z = (x - mean) * torch.exp(-0.5 * log_var)
    log_std = 0.5 * log_var
    z, log_std = torch.broadcast_tensors(z, log_std)
    return -0.5 * torch.einsum("...d,...d->...", z, z) - log_std.sum(-1) - HALF_LOG_TWO_PI * z.shape[-1]


def _log_joint(x, log_weights, means, log_vars):
    """[N, K]: log w_k + log N(x_n; means_k, ...), by einsum over the standardised residuals."""
    inv_std = torch.exp(-0.5 * log_vars)  # [K, D]
    z = (x.unsqueeze(1) - means.unsqueeze(0)) * inv_std.unsqueeze(0)  # [N, K, D]
    quad = torch.einsum("nkd,nkd->nk", z, z)
    log_norm = 0.5 * log_vars.sum(-1) + HALF_LOG_TWO_PI * x.shape[-1]  # [K]
    return log_weights - log_norm - 0.5 * quad


def gmm_log_likelihood(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
                       log_vars: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(_log_joint(x, log_weights, means, log_vars), dim=1)


def gmm_em_step(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor):
    resp = torch.softmax(_log_joint(x, log_weights, means, log_vars), dim=1)  # [N, K]
    counts = resp.sum(0)  # N_k
    new_log_weights = counts.log() - counts.sum().log()
    new_means = torch.einsum("nk,nd->kd", resp, x) / counts[:, None]
    dev = x.unsqueeze(1) - new_means.unsqueeze(0)  # [N, K, D]
    new_vars = torch.einsum("nk,nkd->kd", resp, dev * dev) / counts[:, None]
    return new_log_weights, new_means, new_vars.log()
