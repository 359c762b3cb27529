"""Homework 6: score matching, Langevin dynamics, SDEs and energy-based models.

You will implement

* denoising score matching (Vincent, 2011, "A Connection Between Score
  Matching and Denoising Autoencoders", eq. 11; with a Gaussian kernel the
  target score is ``-(x_tilde - x) / sigma^2 = -noise / sigma``);
* sliced score matching (Song, Garg, Shi & Ermon, 2019, "Sliced Score
  Matching: A Scalable Approach to Density and Score Estimation", eq. 7);
* one step of (unadjusted) Langevin dynamics (Song & Ermon, 2019,
  "Generative Modeling by Estimating Gradients of the Data Distribution",
  eq. 4);
* the variance-preserving (VP) SDE of Song et al. (2021, "Score-Based
  Generative Modeling through Stochastic Differential Equations", eqs. 11,
  29, 33): its Gaussian perturbation kernel, one Euler-Maruyama step of the
  reverse-time SDE (eq. 6) and the probability-flow ODE drift (eq. 13);
* the contrastive-divergence loss for energy-based models (Hinton, 2002,
  "Training Products of Experts by Minimizing Contrastive Divergence").

The VP-SDE with linear ``beta(t) = beta_min + t (beta_max - beta_min)`` for
``t`` in [0, 1] is ``dx = f(x, t) dt + g(t) dw`` with ``f(x, t) = -0.5 beta(t) x``
and ``g(t)^2 = beta(t)``.

``score_fn(x, sigma_or_t)`` returns a tensor shaped like ``x``;
``energy_fn(x)`` returns ``[B]``. Per-example quantities ``[B]`` (``sigma``,
``t``) must be reshaped to ``[B, 1, ..., 1]`` to broadcast over the non-batch
dims; "sum_d" sums all non-batch dims. Keep the dtype and device of the data,
never modify inputs in place, and keep every loss differentiable.
"""

# How to check your work before you submit (the public checks; nothing is sent
# anywhere), with the course's student bundle (pip install
# dgm_grade_student_hw6_score-*.whl):
#
# - in a notebook (Jupyter, Colab), in a new cell: from dgm_grade.hw6_score import
#   check; check() (or check("function_name")): it checks the functions as your kernel
#   defines them now;
# - in a terminal: dgm-check-hw6-score score.py (or score.ipynb).
#
# What is graded: the functions below. The public checks (22 points) are the ones you
# can see and run; hidden checks, which compare with the solution, grade the other 19
# points after you submit.

from __future__ import annotations
import torch


def dsm_loss(score_fn, x: torch.Tensor, sigma, noise: torch.Tensor) -> torch.Tensor:
    """Denoising score matching loss (Vincent 2011) at noise level ``sigma``.

    ::

        x_tilde = x + sigma * noise
        loss    = 0.5 * mean_b sum_d ( score_fn(x_tilde, sigma) + noise / sigma )^2

    Pass ``sigma`` to ``score_fn`` exactly as received.

    Args:
        score_fn: callable ``(x, sigma) -> [B, ...]``.
        x: ``[B, ...]`` clean data.
        sigma: a float, or a tensor ``[B]`` (one level per example).
        noise: ``[B, ...]`` standard normal noise.

    Returns:
        scalar, differentiable in the parameters of ``score_fn``.
    """
    raise NotImplementedError  # TODO: your implementation


def sliced_score_matching_loss(score_fn, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Sliced score matching loss (Song et al. 2019) with one projection per example.

    With ``s = score_fn(x, None)``::

        loss = mean_b [ v_b . grad_x (v_b . s_b) + 0.5 (v_b . s_b)^2 ]

    The term ``v . grad_x(v . s)`` (a Hessian-vector style product) needs
    ``torch.autograd.grad`` of ``sum_b (v_b . s_b)`` with respect to ``x``
    with ``create_graph=True``, so that the loss stays differentiable in the
    parameters of ``score_fn``. ``x`` must require grad for that: if it does
    not, use a detached copy that does (never call ``requires_grad_`` on the
    caller's tensor).

    Args:
        score_fn: callable ``(x, None) -> [B, D]``.
        x: ``[B, D]`` data.
        v: ``[B, D]`` projection directions.

    Returns:
        scalar, differentiable in the parameters of ``score_fn``.
    """
    raise NotImplementedError  # TODO: your implementation


def langevin_step(score_fn, x: torch.Tensor, step_size, noise: torch.Tensor, sigma=None) -> torch.Tensor:
    """One step of unadjusted Langevin dynamics.

    ``x + step_size * score_fn(x, sigma) + sqrt(2 * step_size) * noise``

    Args:
        score_fn: callable ``(x, sigma) -> [B, ...]``.
        x: ``[B, ...]`` current samples.
        step_size: positive float.
        noise: ``[B, ...]`` standard normal noise.
        sigma: passed through to ``score_fn`` unchanged (may be ``None``).

    Returns:
        ``[B, ...]`` the next samples.
    """
    raise NotImplementedError  # TODO: your implementation


def vp_sde_marginal(x0: torch.Tensor, t: torch.Tensor, beta_min: float=0.1, beta_max: float=20.0):
    """Perturbation kernel ``p_t(x_t | x_0)`` of the VP-SDE (Song et al. 2021, eq. 33).

    ::

        log_mean_coeff = -0.25 * t^2 * (beta_max - beta_min) - 0.5 * t * beta_min
        mean = exp(log_mean_coeff) * x0
        std  = sqrt(1 - exp(2 * log_mean_coeff))

    (``torch.expm1`` computes ``1 - exp(a) = -expm1(a)`` accurately for small t.)

    Args:
        x0: ``[B, ...]`` clean data.
        t: ``[B]`` continuous times in [0, 1].
        beta_min, beta_max: the linear ``beta(t)`` endpoints.

    Returns:
        ``(mean, std)`` with ``mean: [B, ...]`` and ``std: [B, 1, ..., 1]``
        (broadcastable to ``x0``), in ``x0``'s dtype.
    """
    raise NotImplementedError  # TODO: your implementation


def reverse_sde_step(score_fn, x: torch.Tensor, t, dt: float, noise: torch.Tensor, beta_min: float=0.1, beta_max: float=20.0) -> torch.Tensor:
    """One Euler-Maruyama step of the reverse-time VP-SDE from ``t`` to ``t - dt``.

    Reverse SDE (Song et al. 2021, eq. 6): ``dx = [f(x, t) - g(t)^2 score(x, t)] dt + g(t) dw_bar``
    integrated backwards in time, so with ``dt > 0``::

        beta   = beta_min + t * (beta_max - beta_min)
        f      = -0.5 * beta * x,      g^2 = beta
        x_prev = x - (f - g^2 * score_fn(x, t)) * dt + sqrt(g^2 * dt) * noise

    Drift and score are evaluated at ``t``; pass ``t`` to ``score_fn`` as received.

    Args:
        score_fn: callable ``(x, t) -> [B, ...]``.
        x: ``[B, ...]`` samples at time ``t``.
        t: ``[B]`` continuous times.
        dt: positive step size.
        noise: ``[B, ...]`` standard normal noise.
        beta_min, beta_max: the linear ``beta(t)`` endpoints.

    Returns:
        ``[B, ...]`` samples at time ``t - dt``.
    """
    raise NotImplementedError  # TODO: your implementation


def probability_flow_drift(score_fn, x: torch.Tensor, t, beta_min: float=0.1, beta_max: float=20.0) -> torch.Tensor:
    """Drift of the VP-SDE's probability-flow ODE (Song et al. 2021, eq. 13).

    ::

        beta  = beta_min + t * (beta_max - beta_min)
        drift = f(x, t) - 0.5 * g(t)^2 * score_fn(x, t) = -0.5 * beta * x - 0.5 * beta * score_fn(x, t)

    Args:
        score_fn: callable ``(x, t) -> [B, ...]``.
        x: ``[B, ...]``.
        t: ``[B]`` continuous times (passed to ``score_fn`` as received).
        beta_min, beta_max: the linear ``beta(t)`` endpoints.

    Returns:
        ``[B, ...]`` the drift ``dx/dt``.
    """
    raise NotImplementedError  # TODO: your implementation


def contrastive_divergence_loss(energy_fn, x_pos: torch.Tensor, x_neg: torch.Tensor) -> torch.Tensor:
    """Contrastive-divergence loss for an energy-based model (Hinton 2002).

    ``mean_b E(x_pos) - mean_b E(x_neg.detach())``: lowers the energy of the
    data and raises that of the negative samples (e.g. from Langevin
    dynamics). Gradients reach the energy's parameters through both terms
    and never flow into ``x_neg``.

    Args:
        energy_fn: callable ``[B, ...] -> [B]``.
        x_pos: ``[B, ...]`` data.
        x_neg: ``[B', ...]`` negative samples.

    Returns:
        scalar.
    """
    raise NotImplementedError  # TODO: your implementation
