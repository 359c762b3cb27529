"""Homework 1: foundations (sampling, maximum likelihood, Gaussian mixtures).

You will implement

* the Box-Muller transform (Box & Muller, 1958, "A Note on the Generation of
  Random Normal Deviates"), which turns two independent Uniform(0, 1] numbers
  into two independent standard normal numbers;
* maximum-likelihood estimation of a multivariate Gaussian
  (Bishop, 2006, "Pattern Recognition and Machine Learning", eqs. 2.121-2.122);
* the log-density of a diagonal Gaussian and of a mixture of diagonal
  Gaussians (Bishop 2006, eq. 9.7), computed stably with ``torch.logsumexp``;
* one iteration of Expectation-Maximisation for that mixture
  (Dempster, Laird & Rubin, 1977; Bishop 2006, section 9.2.2, eqs. 9.23-9.27,
  here with diagonal covariances and everything in log space).

Conventions: Gaussians are parametrised by their mean and *natural-log*
variance ``log_var``. "Summed over the last dim" means the last dimension is
the event dimension and all leading dimensions broadcast. Keep the dtype and
device of the inputs, never modify inputs in place, keep everything
differentiable, and stay numerically stable (means up to |1e3|, log-variances
in [-30, 30], points far from every mixture component).
"""

# How to check your work before you submit (the public checks; nothing is sent
# anywhere), with the course's student bundle (pip install
# dgm_grade_student_hw1_foundations-*.whl):
#
# - in a notebook (Jupyter, Colab), in a new cell: from dgm_grade.hw1_foundations import
#   check; check() (or check("function_name")): it checks the functions as your kernel
#   defines them now;
# - in a terminal: dgm-check-hw1-foundations foundations.py (or foundations.ipynb).
#
# What is graded: the functions below. The public checks (27 points) are the ones you
# can see and run; hidden checks, which compare with the solution, grade the other 17
# points after you submit.

from __future__ import annotations
import math
import torch


def box_muller(u1: torch.Tensor, u2: torch.Tensor):
    """Box-Muller transform: two uniforms to two independent standard normals.

    ::

        r  = sqrt(-2 ln u1)
        z1 = r * cos(2 pi u2)
        z2 = r * sin(2 pi u2)

    Args:
        u1: ``[...]`` uniform samples in (0, 1].
        u2: ``[...]`` uniform samples in (0, 1], same shape as ``u1``.

    Returns:
        ``(z1, z2)``, each ``[...]``, independent N(0, 1) when ``u1``, ``u2``
        are independent Uniform(0, 1].
    """
    raise NotImplementedError  # TODO: your implementation


def gaussian_mle(x: torch.Tensor):
    """Maximum-likelihood mean and covariance of a multivariate Gaussian.

    ::

        mean = (1/N) sum_n x_n
        cov  = (1/N) sum_n (x_n - mean)(x_n - mean)^T      (divide by N, not N - 1)

    Args:
        x: ``[N, D]`` data, one row per observation.

    Returns:
        ``(mean, cov)`` with ``mean: [D]`` and ``cov: [D, D]``.
    """
    raise NotImplementedError  # TODO: your implementation


def diag_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Log-density of a Gaussian with diagonal covariance, summed over the last dim.

    ::

        log N(x; mean, diag(exp(log_var)))
            = -0.5 * sum_d [ log(2 pi) + log_var_d + (x_d - mean_d)^2 / exp(log_var_d) ]

    Args:
        x: ``[..., D]``.
        mean: ``[..., D]`` (broadcastable against ``x``).
        log_var: ``[..., D]`` (broadcastable against ``x``).

    Returns:
        ``[...]`` log-density (broadcast leading shape, last dim summed out).

    Hint: multiply by ``exp(-log_var)`` rather than dividing by ``exp(log_var)``.
    """
    raise NotImplementedError  # TODO: your implementation


def gmm_log_likelihood(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of each point under a mixture of diagonal Gaussians.

    ::

        log p(x_n) = log sum_k exp( log_weights_k + log N(x_n; means_k, diag(exp(log_vars_k))) )

    Compute the ``[N, K]`` table of ``log_weights_k + log N(x_n; ...)`` by
    broadcasting (``x[:, None, :]`` against ``means[None]``), then reduce it
    with ``torch.logsumexp`` over ``k``: never exponentiate the densities
    directly, or points far from every component give ``log(0) = -inf``.

    Args:
        x: ``[N, D]`` data.
        log_weights: ``[K]`` log mixture weights (already normalised:
            ``logsumexp(log_weights) == 0``; renormalising them, e.g. with
            ``torch.log_softmax``, is allowed but not needed, so their
            gradient is only defined, and checked, along directions that
            keep the weights normalised).
        means: ``[K, D]`` component means.
        log_vars: ``[K, D]`` component log-variances.

    Returns:
        ``[N]`` log p(x_n).
    """
    raise NotImplementedError  # TODO: your implementation


def gmm_em_step(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor):
    """One Expectation-Maximisation iteration for a diagonal Gaussian mixture.

    E-step (in log space, stable for far-away points)::

        log r_nk = log_weights_k + log N(x_n; means_k, diag(exp(log_vars_k)))
                   - logsumexp_j( log_weights_j + log N(x_n; means_j, ...) )

    M-step (closed form, with ``N_k = sum_n r_nk``)::

        weights_k = N_k / N                 (return its log)
        means_k   = (1/N_k) sum_n r_nk x_n
        vars_kd   = (1/N_k) sum_n r_nk (x_nd - means_kd)^2     (new means; return log)

    Args:
        x: ``[N, D]`` data.
        log_weights: ``[K]`` current normalised log mixture weights (as in
            ``gmm_log_likelihood``: renormalising is allowed; gradients are
            checked along directions that keep them normalised).
        means: ``[K, D]`` current means.
        log_vars: ``[K, D]`` current log-variances.

    Returns:
        ``(log_weights, means, log_vars)`` with shapes ``[K]``, ``[K, D]``,
        ``[K, D]``; the new ``log_weights`` are normalised.
    """
    raise NotImplementedError  # TODO: your implementation
