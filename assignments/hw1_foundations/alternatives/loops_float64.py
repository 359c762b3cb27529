"""Alternative (style): explicit Python loops, float64 inside and cast back, an epsilon in the square root.

Written from the handout alone. Every function promotes its inputs to float64,
loops over observations, dimensions or components, and casts the result back to
the input dtype (``.to`` keeps the autograd graph). Box-Muller adds 1e-12
inside the square root (|z| <= 1e-6 at u1 = 1), which the spec allows; the
mixture's log-sum-exp is written out with the maximum subtracted.
"""
from __future__ import annotations

import math

import torch


def box_muller(u1: torch.Tensor, u2: torch.Tensor):
    dtype = u1.dtype
    r = torch.sqrt(-2.0 * torch.log(u1.double()) + 1e-12)
    theta = 2.0 * math.pi * u2.double()
    return (r * torch.cos(theta)).to(dtype), (r * torch.sin(theta)).to(dtype)


def gaussian_mle(x: torch.Tensor):
    dtype = x.dtype
    xd = x.double()
    n, d = xd.shape
    total = torch.zeros(d, dtype=torch.float64)
    for i in range(n):
        total = total + xd[i]
    mean = total / n
    scatter = torch.zeros(d, d, dtype=torch.float64)
    for i in range(n):
        dev = xd[i] - mean
        scatter = scatter + torch.outer(dev, dev)
    return mean.to(dtype), (scatter / n).to(dtype)


def diag_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    dtype = torch.result_type(x, mean)
    x, mean, log_var = torch.broadcast_tensors(x.double(), mean.double(), log_var.double())
    total = torch.zeros(x.shape[:-1], dtype=torch.float64)
    for j in range(x.shape[-1]):
        dev = x[..., j] - mean[..., j]
        total = total - 0.5 * (math.log(2.0 * math.pi) + log_var[..., j] + dev * dev * torch.exp(-log_var[..., j]))
    return total.to(dtype)


def _component_log_densities(x: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor) -> torch.Tensor:
    """[N, K] float64 table of log N(x_n; means_k, diag(exp(log_vars_k)))."""
    columns = [diag_gaussian_log_prob(x.double(), means[k].double(), log_vars[k].double())
               for k in range(means.shape[0])]
    return torch.stack(columns, dim=1)


def _logsumexp_rows(table: torch.Tensor) -> torch.Tensor:
    top = table.max(dim=1, keepdim=True).values
    return top.squeeze(1) + torch.log(torch.exp(table - top).sum(dim=1))


def gmm_log_likelihood(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
                       log_vars: torch.Tensor) -> torch.Tensor:
    table = log_weights.double() + _component_log_densities(x, means, log_vars)
    return _logsumexp_rows(table).to(x.dtype)


def gmm_em_step(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor):
    dtype = x.dtype
    xd = x.double()
    n = xd.shape[0]
    log_joint = log_weights.double() + _component_log_densities(xd, means, log_vars)
    log_resp = log_joint - _logsumexp_rows(log_joint).unsqueeze(1)
    new_log_weights, new_means, new_log_vars = [], [], []
    for k in range(means.shape[0]):
        r = torch.exp(log_resp[:, k])
        n_k = r.sum()
        mean_k = (r.unsqueeze(1) * xd).sum(dim=0) / n_k
        var_k = (r.unsqueeze(1) * (xd - mean_k) ** 2).sum(dim=0) / n_k
        new_log_weights.append(torch.log(n_k) - math.log(n))
        new_means.append(mean_k)
        new_log_vars.append(torch.log(var_k))
    return (torch.stack(new_log_weights).to(dtype), torch.stack(new_means).to(dtype),
            torch.stack(new_log_vars).to(dtype))
