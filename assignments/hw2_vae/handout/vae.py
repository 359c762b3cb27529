"""Homework 2: variational autoencoders.

You will implement the building blocks of a VAE (Kingma & Welling, 2014,
"Auto-Encoding Variational Bayes") and of its importance-weighted variant
(Burda, Grosse & Salakhutdinov, 2016, "Importance Weighted Autoencoders").

The model is ``p(z) = N(0, I)``, ``p(x | z) = Bernoulli(sigmoid(decode(z)))``
and the amortised posterior is ``q(z | x) = N(mean, diag(exp(log_var)))`` with
``(mean, log_var) = encode(x)``.

* ELBO (Kingma & Welling 2014, eq. 3):
  ``log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z))``.
* IWAE bound (Burda et al. 2016, eq. 8):
  ``log p(x) >= E[log (1/k) sum_i p(x, z_i) / q(z_i|x)]``, ``z_i ~ q(z|x)``.

Conventions: Gaussians are parametrised by their mean and *natural-log*
variance ``log_var``. "Summed over the last dim" means the last dimension is
the event dimension and all leading dimensions broadcast. Keep the dtype and
device of the inputs, never modify inputs in place, keep everything
differentiable, and stay numerically stable (finite values and gradients for
logits up to |100|, means up to |1e3|, log-variances in [-30, 30]).
"""

# How to check your work before you submit (the public checks; nothing is sent
# anywhere), with the course's student bundle (pip install
# dgm_grade_student_hw2_vae-*.whl):
#
# - in a notebook (Jupyter, Colab), in a new cell: from dgm_grade.hw2_vae import check;
#   check() (or check("function_name")): it checks the functions as your kernel defines
#   them now;
# - in a terminal: dgm-check-hw2-vae vae.py (or vae.ipynb).
#
# What is graded: the functions below. The public checks (35 points) are the ones you
# can see and run; hidden checks, which compare with the solution, grade the other 21
# points after you submit.

from __future__ import annotations
import math
import torch
import torch.nn.functional as F


def kl_normal(q_mean: torch.Tensor, q_log_var: torch.Tensor, p_mean: torch.Tensor, p_log_var: torch.Tensor) -> torch.Tensor:
    """KL divergence between two diagonal Gaussians, in closed form.

    Computes ``KL(N(q_mean, exp(q_log_var)) || N(p_mean, exp(p_log_var)))``
    summed over the last dimension::

        KL = 0.5 * sum_d [ p_log_var - q_log_var
                           + (exp(q_log_var) + (q_mean - p_mean)^2) / exp(p_log_var)
                           - 1 ]

    Args:
        q_mean: ``[..., D]`` mean of q.
        q_log_var: ``[..., D]`` log-variance of q.
        p_mean: ``[..., D]`` mean of p (broadcastable against q's arguments).
        p_log_var: ``[..., D]`` log-variance of p (broadcastable).

    Returns:
        ``[...]`` the KL divergence (>= 0), last dim summed out.

    Hint: for stability write the variance ratio as ``exp(q_log_var - p_log_var)``
    and the mean term as ``(q_mean - p_mean)^2 * exp(-p_log_var)``.
    """
    raise NotImplementedError  # TODO: your implementation


def sample_gaussian(mean: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor | None=None) -> torch.Tensor:
    """Reparameterised sample from ``N(mean, diag(exp(log_var)))``.

    ``z = mean + exp(0.5 * log_var) * eps`` with ``eps ~ N(0, I)``
    (Kingma & Welling 2014, section 2.4). The sample is a differentiable
    function of ``mean`` and ``log_var``, also when ``eps`` is drawn here.

    Args:
        mean: ``[..., D]``.
        log_var: ``[..., D]`` (broadcastable against ``mean``).
        eps: ``[..., D]`` standard normal noise, or ``None`` to draw it with
            ``torch.randn`` in the broadcast shape of ``mean`` and ``log_var``
            (same dtype and device as ``mean``).

    Returns:
        ``[..., D]`` the sample ``z``.
    """
    raise NotImplementedError  # TODO: your implementation


def log_bernoulli_with_logits(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Bernoulli log-likelihood parametrised by logits, summed over the last dim.

    ::

        log p(x) = sum_d [ x_d * log sigmoid(l_d) + (1 - x_d) * log(1 - sigmoid(l_d)) ]

    ``x`` may be fractional (in [0, 1]). Use ``log(1 - sigmoid(l)) =
    log sigmoid(-l)`` and ``F.logsigmoid`` so that values and gradients stay
    finite for logits as large as |100| (``log(sigmoid(l))`` is not).

    Args:
        x: ``[..., D]`` targets in [0, 1].
        logits: ``[..., D]`` Bernoulli logits (broadcastable against ``x``).

    Returns:
        ``[...]`` log-likelihood per example (the broadcast shape of ``x`` and
        ``logits`` without the last dim).
    """
    raise NotImplementedError  # TODO: your implementation


def log_mean_exp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Numerically stable ``log(mean(exp(x), dim))``.

    ``log_mean_exp(x, dim) = logsumexp(x, dim) - log(n)`` where ``n =
    x.shape[dim]``. Use ``torch.logsumexp`` (which subtracts the maximum
    before exponentiating) so that values like ``x = -1000`` or ``+1000``
    do not underflow or overflow.

    Args:
        x: any shape.
        dim: the dimension to average over (negative values count from the
            end, as in torch); it is removed from the result.

    Returns:
        ``x`` with dimension ``dim`` removed.
    """
    raise NotImplementedError  # TODO: your implementation


def negative_elbo_bound(model, x: torch.Tensor):
    """Negative ELBO of a VAE with prior N(0, I) and Bernoulli decoder.

    Steps:

    1. ``mean, log_var = model.encode(x)``, each ``[B, z_dim]``.
    2. Draw ONE reparameterised sample per example,
       ``z = sample_gaussian(mean, log_var)``.
    3. ``logits = model.decode(z)``, ``[B, D]``.
    4. ``rec = -mean_b log p(x_b | z_b)`` (Bernoulli log-likelihood of ``x``
       under ``logits``).
    5. ``kl = mean_b KL(q(z | x_b) || N(0, I))`` (closed form).
    6. ``nelbo = kl + rec``.

    Args:
        model: object with ``encode(x) -> (mean, log_var)`` and
            ``decode(z) -> logits``.
        x: ``[B, D]`` data in [0, 1].

    Returns:
        ``(nelbo, kl, rec)``: three scalars (0-dim tensors), each averaged over
        the batch, differentiable in the model parameters.
    """
    raise NotImplementedError  # TODO: your implementation


def negative_iwae_bound(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """Negative importance-weighted (IWAE) bound with ``k`` samples per example.

    ::

        niwae = -mean_b log (1/k) sum_{i=1..k} p(x_b | z_i) p(z_i) / q(z_i | x_b),
        z_i ~ q(z | x_b) = N(mean_b, diag(exp(log_var_b)))

    Steps:

    1. ``mean, log_var = model.encode(x)``, each ``[B, z_dim]``.
    2. Draw ``k`` reparameterised samples per example, ``z: [k, B, z_dim]``,
       and decode them all at once: ``model.decode(z) -> [k, B, D]``.
    3. Log importance weights ``[k, B]``:
       ``log w = log p(x | z) + log N(z; 0, I) - log N(z; mean, diag(exp(log_var)))``,
       using the full Gaussian log densities
       ``log N(z; m, v) = -0.5 * sum_d [log(2 pi) + log v_d + (z_d - m_d)^2 / v_d]``.
    4. ``niwae = -mean_b log_mean_exp(log w, dim=0)``.

    With ``k = 1`` this is an unbiased estimate of the negative ELBO; it
    decreases (the bound tightens) as ``k`` grows.

    Args:
        model: object with ``encode(x) -> (mean, log_var)`` and
            ``decode(z) -> logits`` accepting any leading dims.
        x: ``[B, D]`` data in [0, 1].
        k: number of importance samples (>= 1).

    Returns:
        scalar (0-dim tensor), differentiable in the model parameters.
    """
    raise NotImplementedError  # TODO: your implementation
