"""Homework 5: denoising diffusion probabilistic models.

You will implement the pieces of DDPM training and sampling:

* noise schedules: linear (Ho, Jain & Abbeel, 2020, "Denoising Diffusion
  Probabilistic Models", section 4) and cosine (Nichol & Dhariwal, 2021,
  "Improved Denoising Diffusion Probabilistic Models", eq. 17);
* the forward process ``q(x_t | x_0)`` (Ho et al. 2020, eq. 4) and its
  posterior ``q(x_{t-1} | x_t, x_0)`` (eqs. 6-7);
* the simplified noise-prediction loss (eq. 14) and ancestral sampling
  (Algorithm 2, with ``sigma_t^2 = beta_tilde_t``);
* DDIM sampling (Song, Meng & Ermon, 2021, "Denoising Diffusion Implicit
  Models", eqs. 12 and 16);
* classifier-free guidance (Ho & Salimans, 2022, "Classifier-Free Diffusion
  Guidance", eq. 6, written here as ``eps_u + w (eps_c - eps_u)``);
* dynamic thresholding (Saharia et al., 2022, "Photorealistic Text-to-Image
  Diffusion Models with Deep Language Understanding" (Imagen), section 2.3);
* inpainting by replacement of the known pixels (Lugmayr et al., 2022,
  "RePaint: Inpainting using Denoising Diffusion Probabilistic Models", eq. 8).

Indexing: timesteps are integer tensors ``t: [B]`` with values in
``0 .. T-1`` indexing schedule tensors of length ``T`` (index ``t`` is the
paper's step ``t + 1``). ``alpha_bars[t] = prod_{s <= t} (1 - betas[s])``, and
"``alpha_bar`` before step 0" is 1. ``model(x_t, t)`` predicts the noise.

Per-example coefficients (``[B]``, gathered with ``schedule[t]``) must be
reshaped to ``[B, 1, ..., 1]`` so they broadcast over every non-batch dim of
the data (vectors ``[B, D]`` and images ``[B, C, H, W]`` alike).

Dtypes: schedules are returned in ``torch.get_default_dtype()``. When the
data is float32 and the schedule float64, the result must be float32: cast
the gathered coefficients to the data's dtype. Keep the device of the data,
never modify inputs in place, and keep everything differentiable.
"""

# How to check your work before you submit (the public checks; nothing is sent
# anywhere), with the course's student bundle (pip install
# dgm_grade_student_hw5_diffusion-*.whl):
#
# - in a notebook (Jupyter, Colab), in a new cell: from dgm_grade.hw5_diffusion import
#   check; check() (or check("function_name")): it checks the functions as your kernel
#   defines them now;
# - in a terminal: dgm-check-hw5-diffusion diffusion.py (or diffusion.ipynb).
#
# What is graded: the functions below. The public checks (40 points) are the ones you
# can see and run; hidden checks, which compare with the solution, grade the other 29
# points after you submit.

from __future__ import annotations
import math
import torch


def linear_beta_schedule(T: int, beta_start: float=0.0001, beta_end: float=0.02) -> torch.Tensor:
    """Linear noise schedule of Ho et al. (2020).

    ``T`` values evenly spaced from ``beta_start`` to ``beta_end`` inclusive
    (as ``torch.linspace``); ``T >= 2``.

    Returns:
        ``[T]`` betas in the default dtype.
    """
    raise NotImplementedError  # TODO: your implementation


def cosine_beta_schedule(T: int, s: float=0.008, max_beta: float=0.999) -> torch.Tensor:
    """Cosine noise schedule of Nichol & Dhariwal (2021, eq. 17).

    ::

        f(u)        = cos( (u / T + s) / (1 + s) * pi / 2 )^2
        alpha_bar_u = f(u) / f(0)                          for u = 0 .. T
        betas[t]    = min( 1 - alpha_bar_{t+1} / alpha_bar_t, max_beta )   for t = 0 .. T-1

    (Computing in float64 and converting at the end avoids rounding error in
    the tiny early betas.)

    Returns:
        ``[T]`` betas in the default dtype.
    """
    raise NotImplementedError  # TODO: your implementation


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """Sample the forward process ``q(x_t | x_0)`` (Ho et al. 2020, eq. 4).

    ``x_t = sqrt(alpha_bars[t]) * x0 + sqrt(1 - alpha_bars[t]) * noise``

    Args:
        x0: ``[B, ...]`` clean data.
        t: ``[B]`` integer timesteps in ``0 .. T-1``.
        noise: ``[B, ...]`` standard normal noise, shaped like ``x0``.
        alpha_bars: ``[T]`` cumulative products of ``1 - betas``.

    Returns:
        ``[B, ...]`` noisy data ``x_t`` in ``x0``'s dtype, differentiable in ``x0``
        and ``noise``.
    """
    raise NotImplementedError  # TODO: your implementation


def q_posterior_mean_variance(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, betas: torch.Tensor):
    """Mean and variance of the Gaussian posterior ``q(x_{t-1} | x_t, x_0)``.

    With ``alpha_t = 1 - betas[t]``, ``alpha_bar_t = alpha_bars[t]`` and
    ``alpha_bar_prev = alpha_bars[t - 1]`` (1 when ``t == 0``)
    (Ho et al. 2020, eq. 7)::

        mean = sqrt(alpha_bar_prev) * betas[t] / (1 - alpha_bar_t) * x0
             + sqrt(alpha_t) * (1 - alpha_bar_prev) / (1 - alpha_bar_t) * x_t
        var  = betas[t] * (1 - alpha_bar_prev) / (1 - alpha_bar_t)     (beta_tilde_t)

    At ``t == 0`` the result must be exactly ``(x0, 0)``: select it with
    ``torch.where`` (and make sure no NaN/inf is produced on the other branch).
    Beware that ``alpha_bars[t - 1]`` with ``t == 0`` silently picks the last
    element.

    Args:
        x0: ``[B, ...]`` clean data (or a prediction of it).
        x_t: ``[B, ...]`` noisy data at step ``t``.
        t: ``[B]`` integer timesteps.
        betas: ``[T]`` schedule.

    Returns:
        ``(mean, var)``: ``mean: [B, ...]``, ``var: [B, 1, ..., 1]``
        (broadcastable to ``x_t``), both in ``x_t``'s dtype; ``mean`` is
        differentiable in ``x0`` and ``x_t``.
    """
    raise NotImplementedError  # TODO: your implementation


def predict_x0_from_noise(x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """Invert ``q_sample`` for ``x0`` given the noise (no clipping).

    ``x0_hat = (x_t - sqrt(1 - alpha_bars[t]) * noise) / sqrt(alpha_bars[t])``

    Args:
        x_t: ``[B, ...]`` noisy data.
        t: ``[B]`` integer timesteps.
        noise: ``[B, ...]`` (predicted) noise.
        alpha_bars: ``[T]``.

    Returns:
        ``[B, ...]`` in ``x_t``'s dtype, differentiable in ``x_t`` and ``noise``.
    """
    raise NotImplementedError  # TODO: your implementation


def noise_prediction_loss(model, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """Simplified DDPM training loss (Ho et al. 2020, eq. 14).

    ``mean over all elements of (noise - model(q_sample(x0, t, noise, alpha_bars), t))^2``

    Args:
        model: callable ``(x_t [B, ...], t [B]) -> [B, ...]`` predicting noise.
        x0: ``[B, ...]`` clean data.
        t: ``[B]`` integer timesteps.
        noise: ``[B, ...]`` standard normal noise.
        alpha_bars: ``[T]``.

    Returns:
        scalar in ``x0``'s dtype, differentiable in the model's parameters, ``x0``
        and ``noise``.
    """
    raise NotImplementedError  # TODO: your implementation


def p_sample_step(model, x_t: torch.Tensor, t: torch.Tensor, betas: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One ancestral DDPM sampling step (Ho et al. 2020, Algorithm 2).

    With ``eps = model(x_t, t)``, ``alpha_t = 1 - betas[t]``::

        mean   = (x_t - betas[t] / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t)
        x_prev = mean + sqrt(beta_tilde_t) * noise     (no noise where t == 0)

    where ``beta_tilde_t = betas[t] (1 - alpha_bar_prev) / (1 - alpha_bar_t)``
    is the posterior variance (0 at ``t == 0``). ``mean`` equals the posterior
    mean of ``q_posterior_mean_variance`` with ``x0`` replaced by
    ``predict_x0_from_noise(x_t, t, eps, ...)``.

    Args:
        model: callable ``(x_t, t) -> eps``.
        x_t: ``[B, ...]``.
        t: ``[B]`` integer timesteps.
        betas: ``[T]``.
        noise: ``[B, ...]`` standard normal noise.

    Returns:
        ``[B, ...]`` sample of ``x_{t-1}`` in ``x_t``'s dtype, differentiable in
        ``x_t`` and ``noise``.
    """
    raise NotImplementedError  # TODO: your implementation


def ddim_step(model, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor, alpha_bars: torch.Tensor, eta: float, noise: torch.Tensor) -> torch.Tensor:
    """One DDIM step from ``t`` to ``t_prev`` (Song et al. 2021, eqs. 12, 16).

    With ``eps = model(x_t, t)``, ``a = alpha_bars[t]`` and
    ``a_prev = alpha_bars[t_prev]`` (1 where ``t_prev == -1``)::

        x0_hat = (x_t - sqrt(1 - a) * eps) / sqrt(a)          (not clipped)
        sigma  = eta * sqrt((1 - a_prev) / (1 - a)) * sqrt(1 - a / a_prev)
        x_prev = sqrt(a_prev) * x0_hat
               + sqrt(1 - a_prev - sigma^2) * eps
               + sigma * noise

    ``eta = 0`` is the deterministic DDIM sampler; ``eta = 1`` matches DDPM's
    ancestral variance for consecutive steps. Clamp ``1 - a_prev - sigma^2``
    at 0 before the square root (rounding can make it slightly negative).

    Args:
        model: callable ``(x_t, t) -> eps``.
        x_t: ``[B, ...]``.
        t: ``[B]`` integer timesteps.
        t_prev: ``[B]`` integer timesteps (``< t``), entries may be ``-1``.
        alpha_bars: ``[T]``.
        eta: float >= 0.
        noise: ``[B, ...]`` standard normal noise.

    Returns:
        ``[B, ...]`` in ``x_t``'s dtype, differentiable in ``x_t``, ``noise`` and
        the model's parameters (through ``x0_hat`` and ``eps`` alike).
    """
    raise NotImplementedError  # TODO: your implementation


def classifier_free_guidance(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022).

    ``eps_uncond + w * (eps_cond - eps_uncond)``; ``w = 1`` gives the
    conditional prediction, ``w = 0`` the unconditional one.

    Args:
        eps_cond: ``[B, ...]`` conditional noise prediction.
        eps_uncond: ``[B, ...]`` unconditional noise prediction.
        w: a float, or a tensor ``[B]`` (one guidance weight per example,
            broadcast over the non-batch dims).

    Returns:
        ``[B, ...]`` in ``eps_cond``'s dtype, differentiable in ``eps_cond`` and
        ``eps_uncond``.
    """
    raise NotImplementedError  # TODO: your implementation


def dynamic_threshold(x0_hat: torch.Tensor, percentile: float=0.995) -> torch.Tensor:
    """Imagen's dynamic thresholding (Saharia et al. 2022, section 2.3).

    Per example ``b``::

        s_b = max(1, quantile(|x0_hat_b|, percentile))    over all its non-batch elements
        out_b = clamp(x0_hat_b, -s_b, s_b) / s_b

    Use ``torch.quantile`` (linear interpolation) on the flattened
    ``[B, N]`` absolute values. Keep ``s`` differentiable (do not detach the
    quantile): the gradient flows through ``s`` where ``s > 1``.

    Args:
        x0_hat: ``[B, ...]`` predicted clean data.
        percentile: quantile level in [0, 1].

    Returns:
        ``[B, ...]`` values in [-1, 1], in ``x0_hat``'s dtype.
    """
    raise NotImplementedError  # TODO: your implementation


def inpaint_merge(x_prev: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, t_prev: torch.Tensor, alpha_bars: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Replacement-based inpainting step (RePaint, Lugmayr et al. 2022, eq. 8).

    ::

        known   = q_sample(y, t_prev, noise, alpha_bars)   (just y where t_prev == -1)
        x_merge = mask * known + (1 - mask) * x_prev

    Pixels with ``mask == 1`` are known and get the observed image ``y``
    noised to level ``t_prev``; pixels with ``mask == 0`` keep the model's
    sample ``x_prev``. Careful: ``t_prev == -1`` must not index the schedule
    (``alpha_bars[-1]`` is the *last* entry).

    Args:
        x_prev: ``[B, ...]`` the model's sample at step ``t_prev``.
        y: ``[B, ...]`` the observed (clean) image.
        mask: ``[B, ...]`` float 0/1, shaped like ``y``.
        t_prev: ``[B]`` integer timesteps, entries may be ``-1``.
        alpha_bars: ``[T]``.
        noise: ``[B, ...]`` standard normal noise.

    Returns:
        ``[B, ...]`` in ``x_prev``'s dtype, differentiable in ``x_prev``, ``y`` and
        ``noise``.
    """
    raise NotImplementedError  # TODO: your implementation
