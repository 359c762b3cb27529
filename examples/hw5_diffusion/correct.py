"""A correct hw5 submission, written differently from the reference: a gather helper,
the posterior through its two coefficients, DDIM through its "direction pointing to x_t"."""
import math

import torch


def _at(schedule, t, like):
    """schedule[t] reshaped to [B, 1, ..., 1] in like's dtype (t == -1 -> alpha_bar 1)."""
    ab = torch.cat([schedule.new_ones(1), schedule.to(like.device)])[t + 1]  # index 0 is "before step 0"
    return ab.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def linear_beta_schedule(T, beta_start=1e-4, beta_end=0.02):
    return torch.linspace(beta_start, beta_end, T)


def cosine_beta_schedule(T, s=0.008, max_beta=0.999):
    steps = torch.linspace(0, T, T + 1, dtype=torch.float64)
    f = torch.cos(((steps / T) + s) / (1 + s) * math.pi * 0.5).pow(2)
    betas = 1 - f[1:] / f[:-1]
    return torch.minimum(betas, torch.tensor(max_beta, dtype=torch.float64)).to(torch.get_default_dtype())


def q_sample(x0, t, noise, alpha_bars):
    ab = _at(alpha_bars, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def q_posterior_mean_variance(x0, x_t, t, betas):
    alpha_bars = torch.cumprod(1 - betas, 0)
    ab_t, ab_prev = _at(alpha_bars, t, x_t), _at(alpha_bars, t - 1, x_t)
    beta = betas.to(x_t.device)[t].to(x_t.dtype).view(-1, *([1] * (x_t.dim() - 1)))
    denom = torch.where(ab_t < 1, 1 - ab_t, torch.ones_like(ab_t))
    c0 = ab_prev.sqrt() * beta / denom
    ct = (1 - beta).sqrt() * (1 - ab_prev) / denom
    var = beta * (1 - ab_prev) / denom
    zero = (t == 0).view(-1, *([1] * (x_t.dim() - 1)))
    mean = torch.where(zero, x0, c0 * x0 + ct * x_t)
    return mean, torch.where(zero, torch.zeros_like(var), var)


def predict_x0_from_noise(x_t, t, noise, alpha_bars):
    ab = _at(alpha_bars, t, x_t)
    return (x_t - (1 - ab).sqrt() * noise) / ab.sqrt()


def noise_prediction_loss(model, x0, t, noise, alpha_bars):
    return torch.mean((model(q_sample(x0, t, noise, alpha_bars), t) - noise) ** 2)


def p_sample_step(model, x_t, t, betas, noise):
    alpha_bars = torch.cumprod(1 - betas, 0)
    x0_hat = predict_x0_from_noise(x_t, t, model(x_t, t), alpha_bars)
    mean, var = q_posterior_mean_variance(x0_hat, x_t, t, betas)
    return mean + var.sqrt() * noise


def ddim_step(model, x_t, t, t_prev, alpha_bars, eta, noise):
    eps = model(x_t, t)
    a, a_prev = _at(alpha_bars, t, x_t), _at(alpha_bars, t_prev, x_t)
    x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
    direction = (1 - a_prev - sigma ** 2).clamp_min(0).sqrt() * eps
    return a_prev.sqrt() * x0_hat + direction + sigma * noise


def classifier_free_guidance(eps_cond, eps_uncond, w):
    if torch.is_tensor(w):
        w = w.to(eps_cond).view(-1, *([1] * (eps_cond.dim() - 1)))
    return (1 - w) * eps_uncond + w * eps_cond


def dynamic_threshold(x0_hat, percentile=0.995):
    s = torch.quantile(x0_hat.flatten(1).abs(), percentile, dim=1, keepdim=True)
    s = torch.clamp(s, min=1.0).view(-1, *([1] * (x0_hat.dim() - 1)))
    return x0_hat.clamp(-s, s) / s


def inpaint_merge(x_prev, y, mask, t_prev, alpha_bars, noise):
    known = q_sample(y, t_prev, noise, alpha_bars)  # _at gives alpha_bar = 1 at t_prev = -1
    return torch.where(mask.bool(), known.to(x_prev.dtype), x_prev)
