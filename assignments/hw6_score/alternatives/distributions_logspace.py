"""Alternative correct implementation: torch.distributions and log-space forms. The DSM target
is the autograd score of Normal(x, sigma).log_prob at x_tilde; the sliced term comes from
torch.autograd.functional.vjp(create_graph=True); the Langevin kick and the reverse-SDE noise
are the scale of a Normal; the VP kernel is computed from its log-variance log(-expm1(-B)) with
B = int_0^t beta; the CD loss from one energy call on the concatenated batches. Written from the
handout alone."""
from __future__ import annotations

import torch
from torch.distributions import Normal


def _column(c, x):
    """A float or a [B] tensor as something that broadcasts over x's non-batch dims."""
    if isinstance(c, torch.Tensor):
        return c.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return torch.as_tensor(c, dtype=x.dtype, device=x.device)


def dsm_loss(score_fn, x, sigma, noise):
    scale = _column(sigma, x)
    x_tilde = x + scale * noise
    point = x_tilde.detach().requires_grad_(True)  # the target is data: the score of N(x, sigma^2) at x_tilde
    kernel = Normal(x.detach(), scale.detach().expand_as(x))
    (target,) = torch.autograd.grad(kernel.log_prob(point).sum(), point)
    residual = score_fn(x_tilde, sigma) - target
    return 0.5 * residual.pow(2).flatten(1).sum(-1).mean()


def sliced_score_matching_loss(score_fn, x, v):
    s, vjp = torch.autograd.functional.vjp(lambda z: score_fn(z, None), x, v, create_graph=True)
    projection = (v * s).sum(-1)
    return ((v * vjp).sum(-1) + projection.square() / 2).mean()


def langevin_step(score_fn, x, step_size, noise, sigma=None):
    kick = Normal(torch.zeros_like(x), torch.full_like(x, 2.0 * step_size).sqrt())
    return x + step_size * score_fn(x, sigma) + kick.scale * noise


def _integrated_beta(t, beta_min, beta_max):
    """B(t) = int_0^t beta(s) ds for the linear beta."""
    return beta_min * t + 0.5 * (beta_max - beta_min) * t * t


def vp_sde_marginal(x0, t, beta_min=0.1, beta_max=20.0):
    t = torch.as_tensor(t, device=x0.device).to(torch.float64)
    integral = _integrated_beta(t, beta_min, beta_max)
    log_mean_coeff = -0.5 * integral
    log_var = torch.log(-torch.expm1(-integral))
    view = (-1,) + (1,) * (x0.dim() - 1)
    mean = torch.exp(log_mean_coeff).to(x0.dtype).view(view) * x0
    std = torch.exp(0.5 * log_var).to(x0.dtype).view(view)
    return mean, std


def reverse_sde_step(score_fn, x, t, dt, noise, beta_min=0.1, beta_max=20.0):
    beta = beta_min + (beta_max - beta_min) * _column(t, x)
    g = beta.sqrt()
    mean = x + (0.5 * beta * x + g * g * score_fn(x, t)) * dt
    return mean + Normal(mean, g * dt ** 0.5).scale * noise


def probability_flow_drift(score_fn, x, t, beta_min=0.1, beta_max=20.0):
    beta = beta_min + (beta_max - beta_min) * _column(t, x)
    return -0.5 * beta * (x + score_fn(x, t))


def contrastive_divergence_loss(energy_fn, x_pos, x_neg):
    energies = energy_fn(torch.cat([x_pos, x_neg.detach()], dim=0))
    e_pos, e_neg = energies.split([x_pos.shape[0], x_neg.shape[0]])
    return e_pos.mean() - e_neg.mean()
