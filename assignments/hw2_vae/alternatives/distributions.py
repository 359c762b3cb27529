"""Alternative correct implementation, style: torch.distributions throughout.

Every density, KL divergence and sample comes from ``torch.distributions``
(``Normal``, ``Bernoulli``, ``kl_divergence``, ``rsample``), with argument
validation off so that fractional targets are accepted. Written from the
handout alone; ``dgm-grade validate`` requires full marks under every seed.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Bernoulli, Normal, kl_divergence


def _gaussian(mean: torch.Tensor, log_var: torch.Tensor) -> Normal:
    return Normal(mean, torch.exp(0.5 * log_var), validate_args=False)


def _bernoulli(logits: torch.Tensor) -> Bernoulli:
    return Bernoulli(logits=logits, validate_args=False)


def kl_normal(q_mean, q_log_var, p_mean, p_log_var):
    return kl_divergence(_gaussian(q_mean, q_log_var), _gaussian(p_mean, p_log_var)).sum(-1)


def sample_gaussian(mean, log_var, eps=None):
    q = _gaussian(mean, log_var)
    if eps is None:
        return q.rsample()
    return q.loc + q.scale * eps


def log_bernoulli_with_logits(x, logits):
    return _bernoulli(logits).log_prob(x).sum(-1)


def log_mean_exp(x, dim):
    return torch.logsumexp(x - math.log(x.size(dim)), dim=dim)


def _standard_normal(like: torch.Tensor) -> Normal:
    return Normal(torch.zeros_like(like), torch.ones_like(like), validate_args=False)


def negative_elbo_bound(model, x):
    mean, log_var = model.encode(x)
    q = _gaussian(mean, log_var)
    logits = model.decode(q.rsample())
    rec = -_bernoulli(logits).log_prob(x).sum(-1).mean()
    kl = kl_divergence(q, _standard_normal(mean)).sum(-1).mean()
    return kl + rec, kl, rec


def negative_iwae_bound(model, x, k):
    mean, log_var = model.encode(x)
    q = _gaussian(mean, log_var)
    z = q.rsample((k,))  # [k, B, z_dim]
    log_px_given_z = _bernoulli(model.decode(z)).log_prob(x).sum(-1)
    log_w = log_px_given_z + _standard_normal(mean).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)  # [k, B]
    return -(torch.logsumexp(log_w, dim=0) - math.log(k)).mean()
