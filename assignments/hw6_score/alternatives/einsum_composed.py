"""Alternative correct implementation: einsum reductions over flattened data, everything in the
data's own dtype with the plainest formulas (the DSM target -(x_tilde - x) / sigma^2, the VP std
sqrt(1 - a^2) with t cast to x0's dtype first), per-example coefficients built with unsqueeze,
and functions built from one another: reverse_sde_step from probability_flow_drift
(f - g^2 s = 2 * drift - f) and the Langevin update with torch.addcmul. Written from the handout
alone."""
from __future__ import annotations

import torch


def _expand(c, x):
    """float -> float; [B] tensor -> [B, 1, ..., 1] in x's dtype."""
    if not isinstance(c, torch.Tensor):
        return float(c)
    c = c.to(device=x.device, dtype=x.dtype).flatten()
    for _ in range(x.dim() - 1):
        c = c.unsqueeze(-1)
    return c


def dsm_loss(score_fn, x, sigma, noise):
    s = _expand(sigma, x)
    x_tilde = x + s * noise
    target = -(x_tilde - x) / s ** 2
    r = (score_fn(x_tilde, sigma) - target).flatten(1)
    return 0.5 * torch.einsum("bd,bd->", r, r) / x.shape[0]


def sliced_score_matching_loss(score_fn, x, v):
    leaf = x if x.requires_grad else x.detach().requires_grad_()
    s = score_fn(leaf, None)
    vs = torch.einsum("bd,bd->b", v, s)
    (hv,) = torch.autograd.grad(vs, leaf, grad_outputs=torch.ones_like(vs), create_graph=True)
    vhv = torch.einsum("bd,bd->b", v, hv)
    return torch.mean(vhv + 0.5 * vs * vs)


def langevin_step(score_fn, x, step_size, noise, sigma=None):
    moved = torch.addcmul(x, score_fn(x, sigma), torch.full_like(x, step_size))
    return torch.addcmul(moved, noise, torch.full_like(x, 2 * step_size).sqrt())


def vp_sde_marginal(x0, t, beta_min=0.1, beta_max=20.0):
    t = torch.as_tensor(t, device=x0.device).to(x0.dtype)
    a = torch.exp(-(0.25 * (beta_max - beta_min) * t + 0.5 * beta_min) * t)
    coeff = _expand(a, x0)
    return coeff * x0, torch.sqrt(1 - coeff * coeff)


def _beta(t, x, beta_min, beta_max):
    return beta_min + _expand(torch.as_tensor(t), x) * (beta_max - beta_min)


def probability_flow_drift(score_fn, x, t, beta_min=0.1, beta_max=20.0):
    beta = _beta(t, x, beta_min, beta_max)
    f = -0.5 * beta * x
    return f - 0.5 * beta * score_fn(x, t)


def reverse_sde_step(score_fn, x, t, dt, noise, beta_min=0.1, beta_max=20.0):
    beta = _beta(t, x, beta_min, beta_max)
    f = -0.5 * beta * x
    reverse_drift = 2 * probability_flow_drift(score_fn, x, t, beta_min, beta_max) - f  # = f - g^2 score
    return x - reverse_drift * dt + (beta * dt).sqrt() * noise


def contrastive_divergence_loss(energy_fn, x_pos, x_neg):
    e_pos, e_neg = energy_fn(x_pos), energy_fn(x_neg.detach())
    w_pos = torch.full_like(e_pos, 1.0 / e_pos.numel())
    w_neg = torch.full_like(e_neg, 1.0 / e_neg.numel())
    return torch.einsum("b,b->", w_pos, e_pos) - torch.einsum("b,b->", w_neg, e_neg)
