"""A plausible hw5 submission with three bugs: the posterior reads alpha_bars[t - 1] at t == 0
(the last entry, so it is not (x0, 0) there), classifier-free guidance starts from eps_cond,
and dynamic thresholding forgets to clip s at 1 (it stretches images that are already in range)."""
import math

import torch


def _b(v, x):
    return v.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def linear_beta_schedule(T, beta_start=1e-4, beta_end=0.02):
    return torch.linspace(beta_start, beta_end, T, dtype=torch.get_default_dtype())


def cosine_beta_schedule(T, s=0.008, max_beta=0.999):
    u = torch.arange(T + 1, dtype=torch.float64)
    ab = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    ab = ab / ab[0]
    return (1 - ab[1:] / ab[:-1]).clamp(max=max_beta).to(torch.get_default_dtype())


def q_sample(x0, t, noise, alpha_bars):
    ab = alpha_bars[t]
    return _b(ab.sqrt(), x0) * x0 + _b((1 - ab).sqrt(), x0) * noise


def q_posterior_mean_variance(x0, x_t, t, betas):
    alpha_bars = torch.cumprod(1 - betas, 0)
    ab_t, ab_prev, beta = alpha_bars[t], alpha_bars[t - 1], betas[t]
    mean = _b(ab_prev.sqrt() * beta / (1 - ab_t), x0) * x0 + _b((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab_t), x_t) * x_t
    return mean, _b(beta * (1 - ab_prev) / (1 - ab_t), x_t)


def predict_x0_from_noise(x_t, t, noise, alpha_bars):
    ab = alpha_bars[t]
    return (x_t - _b((1 - ab).sqrt(), x_t) * noise) / _b(ab.sqrt(), x_t)


def noise_prediction_loss(model, x0, t, noise, alpha_bars):
    return ((noise - model(q_sample(x0, t, noise, alpha_bars), t)) ** 2).mean()


def p_sample_step(model, x_t, t, betas, noise):
    alpha_bars = torch.cumprod(1 - betas, 0)
    eps = model(x_t, t)
    beta, ab = betas[t], alpha_bars[t]
    ab_prev = torch.where(t > 0, alpha_bars[(t - 1).clamp(min=0)], torch.ones_like(ab))
    mean = (x_t - _b(beta / (1 - ab).sqrt(), x_t) * eps) / _b((1 - beta).sqrt(), x_t)
    return mean + _b((beta * (1 - ab_prev) / (1 - ab)).sqrt(), x_t) * noise


def ddim_step(model, x_t, t, t_prev, alpha_bars, eta, noise):
    eps = model(x_t, t)
    a = alpha_bars[t]
    a_prev = torch.where(t_prev >= 0, alpha_bars[t_prev.clamp(min=0)], torch.ones_like(a))
    sigma = eta * ((1 - a_prev) / (1 - a)).sqrt() * (1 - a / a_prev).sqrt()
    x0_hat = (x_t - _b((1 - a).sqrt(), x_t) * eps) / _b(a.sqrt(), x_t)
    return (_b(a_prev.sqrt(), x_t) * x0_hat + _b((1 - a_prev - sigma ** 2).clamp(min=0).sqrt(), x_t) * eps
            + _b(sigma, x_t) * noise)


def classifier_free_guidance(eps_cond, eps_uncond, w):
    if isinstance(w, torch.Tensor):
        w = _b(w, eps_cond)
    return eps_cond + w * (eps_cond - eps_uncond)


def dynamic_threshold(x0_hat, percentile=0.995):
    s = torch.quantile(x0_hat.abs().reshape(len(x0_hat), -1), percentile, dim=1)
    s = _b(s, x0_hat)
    return torch.clamp(x0_hat, -s, s) / s


def inpaint_merge(x_prev, y, mask, t_prev, alpha_bars, noise):
    noised = q_sample(y, t_prev.clamp(min=0), noise, alpha_bars)
    known = torch.where(_b(t_prev, y) == -1, y, noised)
    return mask * known + (1 - mask) * x_prev
