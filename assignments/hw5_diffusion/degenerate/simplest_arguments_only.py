"""Special-case answers right only at the simplest values of an argument most checks could leave there.

- schedules that ignore their optional arguments (the defaults always).
- the deterministic DDIM step (eta = 0) for every eta: sigma is never added,
  the noise argument is ignored. Right wherever eta = 0 or t_prev == -1.
- guidance right only for w in {0, 1} (eps_uncond where w == 0, else eps_cond).
- dynamic thresholding right only where s = 1 (x0_hat within [-1, 1]): the identity.
"""


def linear_beta_schedule(T, beta_start=1e-4, beta_end=0.02):
    return torch.linspace(1e-4, 0.02, T, dtype=torch.get_default_dtype())


def cosine_beta_schedule(T, s=0.008, max_beta=0.999):
    u = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((u / T + 0.008) / 1.008 * math.pi / 2.0) ** 2
    alpha_bar = f / f[0]
    return (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999).to(torch.get_default_dtype())


def ddim_step(model, x_t, t, t_prev, alpha_bars, eta, noise):
    shape = (-1,) + (1,) * (x_t.dim() - 1)
    a = alpha_bars[t]
    a_prev = torch.where(t_prev >= 0, alpha_bars[t_prev.clamp(min=0)], torch.ones_like(a))
    a, a_prev = a.to(x_t.dtype).reshape(shape), a_prev.to(x_t.dtype).reshape(shape)
    eps = model(x_t, t)
    x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    return a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps


def classifier_free_guidance(eps_cond, eps_uncond, w):
    if isinstance(w, torch.Tensor):
        zero = (w == 0).reshape((-1,) + (1,) * (eps_cond.dim() - 1))
        return torch.where(zero, eps_uncond, eps_cond)
    return eps_uncond + 0 * eps_cond if w == 0 else eps_cond + 0 * eps_uncond


def dynamic_threshold(x0_hat, percentile=0.995):
    return x0_hat * 1.0
