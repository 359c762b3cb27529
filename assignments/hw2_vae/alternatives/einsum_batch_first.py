"""Alternative correct implementation, style: einsum reductions, log-space forms, batch-first samples, defensive.

Sums are einsums; log sigmoid is written as ``-logaddexp(0, -l)``; the
reconstruction term uses ``F.binary_cross_entropy_with_logits`` with x
expanded to the logits' shape; log-mean-exp subtracts a detached maximum;
the IWAE draws its samples batch-first (``[B, k, z_dim]``) and evaluates
log q(z|x) from ``(z - mean) / std``. Defensive touches the handout allows:
the KL is clamped at 0 from below and x at [0, 1]. Written from the handout
alone; ``dgm-grade validate`` requires full marks under every seed.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def kl_normal(q_mean, q_log_var, p_mean, p_log_var):
    qm, ql, pm, pl = torch.broadcast_tensors(q_mean, q_log_var, p_mean, p_log_var)
    terms = pl - ql + torch.exp(ql - pl) + (qm - pm) ** 2 * torch.exp(-pl) - 1.0
    return (0.5 * torch.einsum("...d->...", terms)).clamp_min(0.0)


def sample_gaussian(mean, log_var, eps=None):
    if eps is None:
        eps = torch.randn_like(torch.broadcast_tensors(mean, log_var)[0])
    return torch.addcmul(mean, torch.exp(0.5 * log_var), eps)


def log_bernoulli_with_logits(x, logits):
    zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
    log_p1 = -torch.logaddexp(zero, -logits)  # log sigmoid(l)
    log_p0 = -torch.logaddexp(zero, logits)  # log (1 - sigmoid(l))
    x, log_p1, log_p0 = torch.broadcast_tensors(x.clamp(0.0, 1.0), log_p1, log_p0)
    return torch.einsum("...d,...d->...", x, log_p1) + torch.einsum("...d,...d->...", 1.0 - x, log_p0)


def log_mean_exp(x, dim):
    top = torch.amax(x, dim=dim, keepdim=True).detach()
    return torch.log(torch.mean(torch.exp(x - top), dim=dim)) + top.squeeze(dim)


def negative_elbo_bound(model, x):
    mean, log_var = model.encode(x)
    logits = model.decode(sample_gaussian(mean, log_var))
    rec = torch.einsum("bd->", F.binary_cross_entropy_with_logits(logits, x, reduction="none")) / x.shape[0]
    kl = 0.5 * torch.einsum("bz->", mean ** 2 + torch.exp(log_var) - 1.0 - log_var) / x.shape[0]
    return kl + rec, kl, rec


def negative_iwae_bound(model, x, k):
    mean, log_var = model.encode(x)  # [B, Z]
    std = torch.exp(0.5 * log_var)
    b, z_dim = mean.shape
    eps = torch.randn(b, k, z_dim, dtype=mean.dtype, device=mean.device)
    z = mean[:, None, :] + std[:, None, :] * eps  # [B, k, Z]
    logits = model.decode(z)  # [B, k, D]
    log_px_given_z = -torch.einsum(
        "bkd->bk", F.binary_cross_entropy_with_logits(logits, x[:, None, :].expand_as(logits), reduction="none"))
    log_2pi = math.log(2 * math.pi)
    log_pz = -0.5 * (torch.einsum("bkz,bkz->bk", z, z) + z_dim * log_2pi)
    scaled = (z - mean[:, None, :]) / std[:, None, :]
    log_qz = -0.5 * (torch.einsum("bkz,bkz->bk", scaled, scaled) + log_var.sum(-1, keepdim=True) + z_dim * log_2pi)
    return -log_mean_exp(log_px_given_z + log_pz - log_qz, 1).mean()
