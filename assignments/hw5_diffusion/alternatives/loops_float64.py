"""Alternative: explicit Python loops, float64 inside, cast back.

Written from the handout alone. Schedules and cumulative products are built step by step; the
functions the checks call on small batches loop over the examples, gathering each coefficient one
example at a time; q_sample, the loss and the ancestral step (which training and sampling call on
thousands of examples) loop over the distinct timesteps instead, treating the examples of one
timestep together. The posterior variance comes back full-shaped ([B, ...], "broadcastable" allows
it); the quantile of dynamic thresholding is computed by sorting each example and interpolating
linearly by hand.
"""
from __future__ import annotations

import math

import torch


def _f64(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64)


def _alpha_bar_list(betas: torch.Tensor) -> list[torch.Tensor]:
    out, running = [], torch.ones((), dtype=torch.float64, device=betas.device)
    for b in _f64(betas):
        running = running * (1.0 - b)
        out.append(running)
    return out


def linear_beta_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    values = [beta_start + (beta_end - beta_start) * i / (T - 1) for i in range(T)] if T > 1 else [beta_start]
    return torch.tensor(values, dtype=torch.float64).to(torch.get_default_dtype())


def cosine_beta_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    def f(u: int) -> float:
        return math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2

    betas = []
    for t in range(T):
        betas.append(min(1.0 - (f(t + 1) / f(0)) / (f(t) / f(0)), max_beta))
    return torch.tensor(betas, dtype=torch.float64).to(torch.get_default_dtype())


def q_sample(x0, t, noise, alpha_bars):
    out = torch.zeros_like(x0, dtype=torch.float64)
    for step in torch.unique(t).tolist():
        rows = (t == step).nonzero().flatten()
        ab = _f64(alpha_bars[step])
        out = out.index_put((rows,), torch.sqrt(ab) * _f64(x0[rows]) + torch.sqrt(1.0 - ab) * _f64(noise[rows]))
    return out.to(x0.dtype)


def q_posterior_mean_variance(x0, x_t, t, betas):
    alpha_bars = _alpha_bar_list(betas)
    means, variances = [], []
    for b in range(x_t.shape[0]):
        step = int(t[b])
        if step == 0:
            means.append(_f64(x0[b]))
            variances.append(torch.zeros_like(_f64(x_t[b])))
            continue
        beta = _f64(betas[step])
        ab, ab_prev = alpha_bars[step], alpha_bars[step - 1]
        coef_x0 = torch.sqrt(ab_prev) * beta / (1.0 - ab)
        coef_xt = torch.sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab)
        means.append(coef_x0 * _f64(x0[b]) + coef_xt * _f64(x_t[b]))
        variances.append((beta * (1.0 - ab_prev) / (1.0 - ab)).expand_as(_f64(x_t[b])))
    return torch.stack(means).to(x_t.dtype), torch.stack(variances).to(x_t.dtype)


def predict_x0_from_noise(x_t, t, noise, alpha_bars):
    rows = []
    for b in range(x_t.shape[0]):
        ab = _f64(alpha_bars[t[b]])
        rows.append((_f64(x_t[b]) - torch.sqrt(1.0 - ab) * _f64(noise[b])) / torch.sqrt(ab))
    return torch.stack(rows).to(x_t.dtype)


def noise_prediction_loss(model, x0, t, noise, alpha_bars):
    eps = model(q_sample(x0, t, noise, alpha_bars), t)
    total = torch.zeros((), dtype=torch.float64, device=x0.device)
    for step in torch.unique(t).tolist():
        rows = (t == step).nonzero().flatten()
        total = total + ((_f64(noise[rows]) - _f64(eps[rows])) ** 2).sum()
    return (total / noise.numel()).to(x0.dtype)


def p_sample_step(model, x_t, t, betas, noise):
    alpha_bars = _alpha_bar_list(betas)
    eps = model(x_t, t)
    out = torch.zeros_like(x_t, dtype=torch.float64)
    for step in torch.unique(t).tolist():
        rows = (t == step).nonzero().flatten()
        beta = _f64(betas[step])
        ab = alpha_bars[step]
        x = (_f64(x_t[rows]) - beta / torch.sqrt(1.0 - ab) * _f64(eps[rows])) / torch.sqrt(1.0 - beta)
        if step > 0:
            var = beta * (1.0 - alpha_bars[step - 1]) / (1.0 - ab)
            x = x + torch.sqrt(var) * _f64(noise[rows])
        out = out.index_put((rows,), x)
    return out.to(x_t.dtype)


def ddim_step(model, x_t, t, t_prev, alpha_bars, eta, noise):
    eps = model(x_t, t)
    rows = []
    for b in range(x_t.shape[0]):
        a = _f64(alpha_bars[t[b]])
        a_prev = _f64(alpha_bars[t_prev[b]]) if int(t_prev[b]) >= 0 else torch.ones_like(a)
        x0_hat = (_f64(x_t[b]) - torch.sqrt(1.0 - a) * _f64(eps[b])) / torch.sqrt(a)
        sigma = eta * torch.sqrt((1.0 - a_prev) / (1.0 - a)) * torch.sqrt(1.0 - a / a_prev)
        direction = torch.sqrt(torch.clamp(1.0 - a_prev - sigma ** 2, min=0.0))
        rows.append(torch.sqrt(a_prev) * x0_hat + direction * _f64(eps[b]) + sigma * _f64(noise[b]))
    return torch.stack(rows).to(x_t.dtype)


def classifier_free_guidance(eps_cond, eps_uncond, w):
    rows = []
    for b in range(eps_cond.shape[0]):
        w_b = _f64(w[b]) if isinstance(w, torch.Tensor) else float(w)
        rows.append(_f64(eps_uncond[b]) + w_b * (_f64(eps_cond[b]) - _f64(eps_uncond[b])))
    return torch.stack(rows).to(eps_cond.dtype)


def _quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    ordered = torch.sort(values).values
    position = q * (ordered.shape[0] - 1)
    lo = int(math.floor(position))
    hi = min(lo + 1, ordered.shape[0] - 1)
    frac = position - lo
    return ordered[lo] + frac * (ordered[hi] - ordered[lo])


def dynamic_threshold(x0_hat, percentile=0.995):
    rows = []
    for b in range(x0_hat.shape[0]):
        x = _f64(x0_hat[b])
        s = _quantile(x.abs().reshape(-1), percentile)
        s = torch.where(s > 1.0, s, torch.ones_like(s))
        rows.append(torch.clamp(x, -s, s) / s)
    return torch.stack(rows).to(x0_hat.dtype)


def inpaint_merge(x_prev, y, mask, t_prev, alpha_bars, noise):
    rows = []
    for b in range(x_prev.shape[0]):
        if int(t_prev[b]) == -1:
            known = _f64(y[b])
        else:
            ab = _f64(alpha_bars[t_prev[b]])
            known = torch.sqrt(ab) * _f64(y[b]) + torch.sqrt(1.0 - ab) * _f64(noise[b])
        m = _f64(mask[b])
        rows.append(m * known + (1.0 - m) * _f64(x_prev[b]))
    return torch.stack(rows).to(x_prev.dtype)
