"""Alternative correct implementation, style: float64 inside, explicit Python loops, softplus forms.

Inputs are promoted to float64, sums over the event dimension are written as
loops over its entries, the Bernoulli log-likelihood uses
``x * l - softplus(l)``, log-mean-exp subtracts the maximum by hand, noise is
drawn in float64, and the IWAE loops over its k samples; results are cast back
to the input dtype. Written from the handout alone; ``dgm-grade validate``
requires full marks under every seed.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def kl_normal(q_mean, q_log_var, p_mean, p_log_var):
    dtype = q_mean.dtype
    qm, ql, pm, pl = torch.broadcast_tensors(q_mean.double(), q_log_var.double(), p_mean.double(), p_log_var.double())
    total = torch.zeros(qm.shape[:-1], dtype=torch.float64, device=qm.device)
    for d in range(qm.shape[-1]):
        diff = qm[..., d] - pm[..., d]
        total = total + 0.5 * (pl[..., d] - ql[..., d] + torch.exp(ql[..., d] - pl[..., d])
                               + diff * diff * torch.exp(-pl[..., d]) - 1.0)
    return total.to(dtype)


def sample_gaussian(mean, log_var, eps=None):
    if eps is None:
        shape = torch.broadcast_shapes(mean.shape, log_var.shape)
        eps = torch.randn(shape, dtype=torch.float64, device=mean.device)
    z = mean.double() + torch.exp(0.5 * log_var.double()) * eps.double()
    return z.to(mean.dtype)


def log_bernoulli_with_logits(x, logits):
    dtype = torch.promote_types(x.dtype, logits.dtype)
    xs, ls = torch.broadcast_tensors(x.double(), logits.double())
    total = torch.zeros(xs.shape[:-1], dtype=torch.float64, device=xs.device)
    for d in range(xs.shape[-1]):
        total = total + xs[..., d] * ls[..., d] - F.softplus(ls[..., d])
    return total.to(dtype)


def log_mean_exp(x, dim):
    values = x.double().movedim(dim, 0)
    top = values.max(dim=0).values
    acc = torch.zeros_like(top)
    for i in range(values.shape[0]):
        acc = acc + torch.exp(values[i] - top)
    return (top + torch.log(acc / values.shape[0])).to(x.dtype)


def negative_elbo_bound(model, x):
    mean, log_var = model.encode(x)
    z = sample_gaussian(mean, log_var)
    logits = model.decode(z)
    rec = -log_bernoulli_with_logits(x, logits).double().mean()
    kl = kl_normal(mean, log_var, torch.zeros_like(mean), torch.zeros_like(log_var)).double().mean()
    return (kl + rec).to(x.dtype), kl.to(x.dtype), rec.to(x.dtype)


def negative_iwae_bound(model, x, k):
    mean, log_var = model.encode(x)
    m, lv = mean.double(), log_var.double()
    log_ws = []
    for _ in range(k):
        eps = torch.randn(mean.shape, dtype=torch.float64, device=mean.device)
        z = m + torch.exp(0.5 * lv) * eps
        log_px_given_z = log_bernoulli_with_logits(x, model.decode(z.to(mean.dtype))).double()
        log_pz = -0.5 * (z * z + math.log(2 * math.pi)).sum(-1)
        log_qz = -0.5 * (eps * eps + lv + math.log(2 * math.pi)).sum(-1)
        log_ws.append(log_px_given_z + log_pz - log_qz)
    return -log_mean_exp(torch.stack(log_ws), 0).mean().to(x.dtype)
