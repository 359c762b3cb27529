"""Alternative (style): torch.distributions everywhere, complex polar form, and defensive renormalisation.

Written from the handout alone. Box-Muller through ``torch.polar`` (r e^{i theta});
the covariance with ``torch.cov(correction=0)``; densities from
``torch.distributions`` (``Independent(Normal)``, ``MixtureSameFamily`` with
``Categorical(logits=...)``, which renormalises the log-weights it is given);
the EM step renormalises its input and output log-weights with ``log_softmax``.
On the handout's domain (normalised log-weights) every value equals the
reference's; off it (a gradient in a direction that un-normalises the weights)
it differs, which the handout leaves free.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal


def box_muller(u1: torch.Tensor, u2: torch.Tensor):
    z = torch.polar(torch.sqrt(-2.0 * torch.log(u1)), 2.0 * math.pi * u2)
    return z.real, z.imag


def gaussian_mle(x: torch.Tensor):
    d = x.shape[1]
    cov = torch.cov(x.T, correction=0).reshape(d, d)
    return x.mean(dim=0), cov


def _diag_normal(mean: torch.Tensor, log_var: torch.Tensor) -> Independent:
    return Independent(Normal(mean, torch.exp(0.5 * log_var), validate_args=False), 1, validate_args=False)


def diag_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    x, mean, log_var = torch.broadcast_tensors(x, mean, log_var)
    return _diag_normal(mean, log_var).log_prob(x)


def gmm_log_likelihood(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
                       log_vars: torch.Tensor) -> torch.Tensor:
    mixture = MixtureSameFamily(Categorical(logits=log_weights, validate_args=False), _diag_normal(means, log_vars),
                                validate_args=False)
    return mixture.log_prob(x)


def gmm_em_step(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor):
    log_weights = torch.log_softmax(log_weights, dim=0)  # defensive: the handout says they are normalised
    log_joint = log_weights + _diag_normal(means, log_vars).log_prob(x.unsqueeze(1))  # [N, K]
    log_resp = torch.log_softmax(log_joint, dim=1)
    resp = log_resp.exp()
    counts = resp.sum(dim=0)
    new_log_weights = torch.log_softmax(torch.logsumexp(log_resp, dim=0), dim=0)
    new_means = (resp.unsqueeze(-1) * x.unsqueeze(1)).sum(dim=0) / counts.unsqueeze(-1)
    new_vars = (resp.unsqueeze(-1) * (x.unsqueeze(1) - new_means) ** 2).sum(dim=0) / counts.unsqueeze(-1)
    return new_log_weights, new_means, new_vars.log()
