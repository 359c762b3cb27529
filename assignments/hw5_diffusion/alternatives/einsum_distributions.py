"""Alternative: einsum for the per-example coefficients, torch.distributions where a formula is one.

Written from the handout alone. "alpha_bar before step 0 is 1" is handled by prepending a 1 to the
cumulative products and indexing with t + 1 (no torch.where); per-example coefficients [B] act on the
data with einsum("b,b...->b..."); q_sample and its inverse are an AffineTransform of the noise and of
x_t; the loss is read off Normal(eps_hat, 1).log_prob(noise); dynamic thresholding divides first and
clamps to [-1, 1] afterwards.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Normal
from torch.distributions.transforms import AffineTransform


def _scale(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """c[b] * x[b, ...] for every example b."""
    return torch.einsum("b,b...->b...", c.to(dtype=x.dtype, device=x.device), x)


def _with_start(alpha_bars: torch.Tensor) -> torch.Tensor:
    """[1, alpha_bars[0], ..., alpha_bars[T-1]]: index t + 1 gives alpha_bar_t, index 0 the value before step 0."""
    return torch.cat([torch.ones(1, dtype=alpha_bars.dtype, device=alpha_bars.device), alpha_bars])


def linear_beta_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64).to(torch.get_default_dtype())


def cosine_beta_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    u = torch.linspace(0.0, 1.0, T + 1, dtype=torch.float64)
    f = torch.cos((u + s) / (1.0 + s) * math.pi / 2.0).pow(2)
    alpha_bar = f / f[0]
    betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
    return torch.minimum(betas, torch.full_like(betas, max_beta)).to(torch.get_default_dtype())


def q_sample(x0, t, noise, alpha_bars):
    ab = alpha_bars[t]
    transform = AffineTransform(loc=_scale(ab.sqrt(), x0), scale=_scale((1.0 - ab).sqrt(), torch.ones_like(x0)))
    return transform(noise)


def q_posterior_mean_variance(x0, x_t, t, betas):
    ab_ext = _with_start(torch.cumprod(1.0 - betas, dim=0))
    ab, ab_prev, beta = ab_ext[t + 1], ab_ext[t], betas[t]
    # 1 - ab = beta at t == 0 > 0: the formulas hold there too and give (x0, 0)
    coef_x0 = ab_prev.sqrt() * beta / (1.0 - ab)
    coef_xt = (1.0 - beta).sqrt() * (1.0 - ab_prev) / (1.0 - ab)
    var = beta * (1.0 - ab_prev) / (1.0 - ab)
    mean = _scale(coef_x0, x0) + _scale(coef_xt, x_t)
    return mean, var.to(x_t.dtype).reshape((-1,) + (1,) * (x_t.dim() - 1))


def predict_x0_from_noise(x_t, t, noise, alpha_bars):
    ab = alpha_bars[t]
    transform = AffineTransform(loc=_scale((1.0 - ab).sqrt(), noise), scale=_scale(ab.sqrt(), torch.ones_like(x_t)))
    return transform.inv(x_t)


def noise_prediction_loss(model, x0, t, noise, alpha_bars):
    eps_hat = model(q_sample(x0, t, noise, alpha_bars), t)
    # -log N(noise; eps_hat, 1) = (noise - eps_hat)^2 / 2 + log(2 pi) / 2
    nll = -Normal(eps_hat, torch.ones_like(eps_hat)).log_prob(noise)
    return 2.0 * (nll - 0.5 * math.log(2.0 * math.pi)).mean()


def p_sample_step(model, x_t, t, betas, noise):
    eps = model(x_t, t)
    ab_ext = _with_start(torch.cumprod(1.0 - betas, dim=0))
    ab, ab_prev, beta = ab_ext[t + 1], ab_ext[t], betas[t]
    mean = _scale(1.0 / (1.0 - beta).sqrt(), x_t - _scale(beta / (1.0 - ab).sqrt(), eps))
    std = (beta * (1.0 - ab_prev) / (1.0 - ab)).sqrt()
    return mean + _scale(std, noise)


def ddim_step(model, x_t, t, t_prev, alpha_bars, eta, noise):
    eps = model(x_t, t)
    ab_ext = _with_start(alpha_bars)
    a, a_prev = ab_ext[t + 1], ab_ext[t_prev + 1]
    x0_hat = _scale(1.0 / a.sqrt(), x_t - _scale((1.0 - a).sqrt(), eps))
    sigma = eta * ((1.0 - a_prev) / (1.0 - a)).sqrt() * (1.0 - a / a_prev).sqrt()
    direction = (1.0 - a_prev - sigma ** 2).clamp(min=0.0).sqrt()
    return _scale(a_prev.sqrt(), x0_hat) + _scale(direction, eps) + _scale(sigma, noise)


def classifier_free_guidance(eps_cond, eps_uncond, w):
    diff = eps_cond - eps_uncond
    if isinstance(w, torch.Tensor):
        return eps_uncond + _scale(w, diff)
    return eps_uncond + w * diff


def dynamic_threshold(x0_hat, percentile=0.995):
    q = torch.quantile(x0_hat.abs().flatten(1), percentile, dim=1, interpolation="linear")
    s = torch.maximum(q, torch.ones_like(q))
    return _scale(1.0 / s, x0_hat).clamp(-1.0, 1.0)


def inpaint_merge(x_prev, y, mask, t_prev, alpha_bars, noise):
    ab = _with_start(alpha_bars)[t_prev + 1]
    known = _scale(ab.sqrt(), y) + _scale((1.0 - ab).sqrt(), noise)
    mask = mask.to(x_prev.dtype)
    return torch.lerp(x_prev, known.to(x_prev.dtype), mask)
