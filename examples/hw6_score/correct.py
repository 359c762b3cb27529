"""A correct hw6 submission, written differently from the reference (einsum sums,
torch.func-free autograd, the marginal via its variance rather than expm1)."""
import math

import torch


def _per_example(c, like):
    """float or [B] -> something that broadcasts over like's non-batch dims."""
    if torch.is_tensor(c):
        return c.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))
    return c


def _beta(t, x, beta_min, beta_max):
    t = _per_example(torch.as_tensor(t), x)
    return beta_min + (beta_max - beta_min) * t


def dsm_loss(score_fn, x, sigma, noise):
    s = _per_example(sigma, x)
    target = -noise / s
    err = score_fn(x + s * noise, sigma) - target
    return err.pow(2).flatten(1).sum(1).mean() / 2


def sliced_score_matching_loss(score_fn, x, v):
    x = x.detach().clone().requires_grad_(True)
    s = score_fn(x, None)
    vs = torch.einsum("bd,bd->b", v, s)
    hvp = torch.autograd.grad(vs.sum(), x, create_graph=True)[0]
    return (torch.einsum("bd,bd->b", v, hvp) + vs.pow(2) / 2).mean()


def langevin_step(score_fn, x, step_size, noise, sigma=None):
    return x + step_size * score_fn(x, sigma) + math.sqrt(2 * step_size) * noise


def vp_sde_marginal(x0, t, beta_min=0.1, beta_max=20.0):
    t = _per_example(torch.as_tensor(t, dtype=torch.float64, device=x0.device), x0.double())
    log_coeff = -(beta_max - beta_min) * t * t / 4 - beta_min * t / 2
    var = 1 - torch.exp(2 * log_coeff)
    return (torch.exp(log_coeff) * x0.double()).to(x0.dtype), var.sqrt().to(x0.dtype)


def reverse_sde_step(score_fn, x, t, dt, noise, beta_min=0.1, beta_max=20.0):
    beta = _beta(t, x, beta_min, beta_max).to(x.dtype)
    drift = -beta * x / 2 - beta * score_fn(x, t)
    return x - drift * dt + (beta * dt).sqrt() * noise


def probability_flow_drift(score_fn, x, t, beta_min=0.1, beta_max=20.0):
    beta = _beta(t, x, beta_min, beta_max).to(x.dtype)
    return -beta / 2 * (x + score_fn(x, t))


def contrastive_divergence_loss(energy_fn, x_pos, x_neg):
    with torch.no_grad():
        x_neg = x_neg.clone()
    return energy_fn(x_pos).mean() - energy_fn(x_neg).mean()
