"""Alternative: log-space and signal-to-noise forms, vectorised, in the default / data dtype.

Written from the handout alone. alpha_bars come from exp(cumsum(log1p(-betas))); square roots are
exp(0.5 log); the cosine schedule is built from log cos and expm1, in the default dtype (no float64
detour); x0_hat uses the signal-to-noise form x_t / sqrt(ab) - sqrt(1/ab - 1) noise; the posterior
is the precision-weighted product of prior and likelihood; guidance is torch.lerp; the quantile of
dynamic thresholding comes from torch.kthvalue of the two neighbouring order statistics;
inpainting selects with torch.where on mask > 0.5.
"""
from __future__ import annotations

import math

import torch


def _per_example(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(dtype=like.dtype, device=like.device).view(-1, *([1] * (like.dim() - 1)))


def _log_alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(torch.log1p(-betas), dim=0)


def linear_beta_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    steps = torch.arange(T, dtype=torch.get_default_dtype())
    return torch.lerp(torch.tensor(beta_start), torch.tensor(beta_end), steps / max(T - 1, 1))


def cosine_beta_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    u = torch.arange(T + 1, dtype=torch.get_default_dtype())
    log_f = 2.0 * torch.log(torch.cos((u / T + s) / (1.0 + s) * (math.pi / 2.0)).abs())
    log_ratio = log_f[1:] - log_f[:-1]  # log(alpha_bar_{t+1} / alpha_bar_t): f(0) cancels
    return torch.clamp(-torch.expm1(log_ratio), max=max_beta)


def q_sample(x0, t, noise, alpha_bars):
    log_ab = torch.log(alpha_bars[t])
    signal = _per_example(torch.exp(0.5 * log_ab), x0)
    spread = _per_example(torch.exp(0.5 * torch.log1p(-torch.exp(log_ab))), x0)
    return signal * x0 + spread * noise


def q_posterior_mean_variance(x0, x_t, t, betas):
    log_ab = _log_alpha_bars(betas)
    first = t == 0
    log_ab_prev = torch.where(first, torch.zeros_like(log_ab[t]), log_ab[(t - 1).clamp(min=0)])
    beta = betas[t]
    prior_var = -torch.expm1(log_ab_prev)  # 1 - alpha_bar_prev: 0 at t == 0
    safe_prior_var = torch.where(first, torch.ones_like(prior_var), prior_var)
    # precision of q(x_{t-1} | x_t, x0) = 1 / prior_var + alpha_t / beta_t
    precision = 1.0 / safe_prior_var + (1.0 - beta) / beta
    var = torch.where(first, torch.zeros_like(precision), 1.0 / precision)
    w_x0 = torch.where(first, torch.ones_like(var), var * torch.exp(0.5 * log_ab_prev) / safe_prior_var)
    w_xt = torch.where(first, torch.zeros_like(var), var * torch.sqrt(1.0 - beta) / beta)
    mean = _per_example(w_x0, x_t) * x0 + _per_example(w_xt, x_t) * x_t
    return mean, _per_example(var, x_t)


def predict_x0_from_noise(x_t, t, noise, alpha_bars):
    log_ab = torch.log(alpha_bars[t])
    inv_sqrt_ab = _per_example(torch.exp(-0.5 * log_ab), x_t)
    noise_to_signal = _per_example(torch.exp(0.5 * torch.log(torch.expm1(-log_ab))), x_t)  # sqrt(1/ab - 1)
    return inv_sqrt_ab * x_t - noise_to_signal * noise


def noise_prediction_loss(model, x0, t, noise, alpha_bars):
    return torch.nn.functional.mse_loss(model(q_sample(x0, t, noise, alpha_bars), t), noise, reduction="mean")


def p_sample_step(model, x_t, t, betas, noise):
    eps = model(x_t, t)
    log_ab = _log_alpha_bars(betas)
    x0_hat = predict_x0_from_noise(x_t, t, eps, torch.exp(log_ab))
    mean, var = q_posterior_mean_variance(x0_hat, x_t, t, betas)
    return mean + torch.exp(0.5 * torch.log(var)) * noise


def ddim_step(model, x_t, t, t_prev, alpha_bars, eta, noise):
    eps = model(x_t, t)
    log_a = torch.log(alpha_bars[t])
    log_a_prev = torch.where(t_prev >= 0, torch.log(alpha_bars[t_prev.clamp(min=0)]), torch.zeros_like(log_a))
    # sigma^2 = eta^2 (1 - a_prev) / (1 - a) (1 - a / a_prev), each factor from logs
    one_minus_a = -torch.expm1(log_a)
    one_minus_a_prev = -torch.expm1(log_a_prev)
    sigma2 = eta ** 2 * one_minus_a_prev / one_minus_a * (-torch.expm1(log_a - log_a_prev))
    direction = torch.clamp(one_minus_a_prev - sigma2, min=0.0).sqrt()
    x0_hat = _per_example(torch.exp(-0.5 * log_a), x_t) * (x_t - _per_example(one_minus_a.sqrt(), x_t) * eps)
    return (_per_example(torch.exp(0.5 * log_a_prev), x_t) * x0_hat + _per_example(direction, x_t) * eps
            + _per_example(sigma2.sqrt(), x_t) * noise)


def classifier_free_guidance(eps_cond, eps_uncond, w):
    if isinstance(w, torch.Tensor):
        w = _per_example(w, eps_cond)
    return torch.lerp(eps_uncond, eps_cond, w)


def dynamic_threshold(x0_hat, percentile=0.995):
    flat = x0_hat.abs().flatten(1)
    n = flat.shape[1]
    position = percentile * (n - 1)
    below = int(math.floor(position))
    above = min(below + 1, n - 1)
    low = torch.kthvalue(flat, below + 1, dim=1).values
    high = torch.kthvalue(flat, above + 1, dim=1).values
    q = low + (position - below) * (high - low)
    s = _per_example(torch.clamp(q, min=1.0), x0_hat)
    return torch.where(x0_hat.abs() <= s, x0_hat, torch.sign(x0_hat) * s) / s


def inpaint_merge(x_prev, y, mask, t_prev, alpha_bars, noise):
    start = _per_example(t_prev == -1, y).bool()
    known = torch.where(start, y, q_sample(y, t_prev.clamp(min=0), noise, alpha_bars))
    return torch.where(mask > 0.5, known.to(x_prev.dtype), x_prev)
