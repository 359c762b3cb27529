"""Alternative correct implementation: explicit Python loops over the event dimensions (data
flattened to [B, D]), arithmetic in float64 inside and the result cast back to the data's dtype;
the DSM target written as Vincent's -(x_tilde - x) / sigma^2, the VP kernel as 1 - exp(2 log a)
without expm1, the score always called on tensors of the data's own dtype, and the SSM input
made a leaf by clone() instead of detach(). Written from the handout alone."""
from __future__ import annotations

import math

import torch


def _per_example(c, batch, device):
    """A noise level or time (float or [B] tensor) as a float64 [B] tensor."""
    if isinstance(c, torch.Tensor):
        return c.reshape(-1).to(device=device, dtype=torch.float64).expand(batch)
    return torch.full((batch,), float(c), dtype=torch.float64, device=device)


def dsm_loss(score_fn, x, sigma, noise):
    batch = x.shape[0]
    s = _per_example(sigma, batch, x.device)
    x64, n64 = x.reshape(batch, -1).to(torch.float64), noise.reshape(batch, -1).to(torch.float64)
    x_tilde64 = torch.stack([x64[:, j] + s * n64[:, j] for j in range(x64.shape[1])], dim=1)
    score = score_fn(x_tilde64.reshape(x.shape).to(x.dtype), sigma).reshape(batch, -1).to(torch.float64)
    per_example = torch.zeros(batch, dtype=torch.float64, device=x.device)
    for j in range(x64.shape[1]):
        target = -(x_tilde64[:, j] - x64[:, j]) / s ** 2  # the score of N(x, sigma^2) at x_tilde
        per_example = per_example + 0.5 * (score[:, j] - target) ** 2
    return (per_example.sum() / batch).to(x.dtype)


def sliced_score_matching_loss(score_fn, x, v):
    x_in = x.clone().detach().requires_grad_(True)
    s = score_fn(x_in, None)
    proj = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for j in range(x.shape[1]):
        proj = proj + v[:, j].to(torch.float64) * s[:, j].to(torch.float64)
    (g,) = torch.autograd.grad(proj.sum(), x_in, create_graph=True)
    trace = torch.zeros_like(proj)
    for j in range(x.shape[1]):
        trace = trace + v[:, j].to(torch.float64) * g[:, j].to(torch.float64)
    return (trace + 0.5 * proj ** 2).mean().to(x.dtype)


def langevin_step(score_fn, x, step_size, noise, sigma=None):
    s = score_fn(x, sigma).to(torch.float64)
    out = x.to(torch.float64) + float(step_size) * s + math.sqrt(2.0 * float(step_size)) * noise.to(torch.float64)
    return out.to(x.dtype)


def vp_sde_marginal(x0, t, beta_min=0.1, beta_max=20.0):
    batch = x0.shape[0]
    tt = _per_example(t, batch, x0.device)
    log_a = -0.25 * tt ** 2 * (beta_max - beta_min) - 0.5 * tt * beta_min
    flat = x0.reshape(batch, -1).to(torch.float64)
    mean = torch.stack([torch.exp(log_a) * flat[:, j] for j in range(flat.shape[1])], dim=1)
    std = torch.sqrt(1.0 - torch.exp(2.0 * log_a))
    view = (batch,) + (1,) * (x0.dim() - 1)
    return mean.reshape(x0.shape).to(x0.dtype), std.reshape(view).to(x0.dtype)


def reverse_sde_step(score_fn, x, t, dt, noise, beta_min=0.1, beta_max=20.0):
    batch = x.shape[0]
    beta = beta_min + _per_example(t, batch, x.device) * (beta_max - beta_min)
    score = score_fn(x, t).reshape(batch, -1).to(torch.float64)
    x64, n64 = x.reshape(batch, -1).to(torch.float64), noise.reshape(batch, -1).to(torch.float64)
    columns = []
    for j in range(x64.shape[1]):
        f = -0.5 * beta * x64[:, j]
        columns.append(x64[:, j] - (f - beta * score[:, j]) * dt + torch.sqrt(beta * dt) * n64[:, j])
    return torch.stack(columns, dim=1).reshape(x.shape).to(x.dtype)


def probability_flow_drift(score_fn, x, t, beta_min=0.1, beta_max=20.0):
    batch = x.shape[0]
    beta = beta_min + _per_example(t, batch, x.device) * (beta_max - beta_min)
    score = score_fn(x, t).reshape(batch, -1).to(torch.float64)
    x64 = x.reshape(batch, -1).to(torch.float64)
    columns = [-0.5 * beta * x64[:, j] - 0.5 * beta * score[:, j] for j in range(x64.shape[1])]
    return torch.stack(columns, dim=1).reshape(x.shape).to(x.dtype)


def contrastive_divergence_loss(energy_fn, x_pos, x_neg):
    e_pos = energy_fn(x_pos).to(torch.float64)
    e_neg = energy_fn(x_neg.detach()).to(torch.float64)
    return (e_pos.sum() / e_pos.shape[0] - e_neg.sum() / e_neg.shape[0]).to(x_pos.dtype)
