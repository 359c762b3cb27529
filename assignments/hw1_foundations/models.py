"""Judge-side helpers for the hw1 checks: data, mixtures, and quantities that are not graded functions.

Students read this file, so nothing here computes a graded function's formula
(no Box-Muller transform, no maximum-likelihood estimate, no diagonal Gaussian
or mixture log-density, no E-step or M-step). What the public checks compare
with is built from other quantities: the normal CDF (``torch.special.ndtr``)
integrated against by Simpson's rule, the full-covariance Gaussian likelihood of
``torch.distributions.MultivariateNormal`` (the objective a maximum-likelihood
estimate maximises), and closed forms on special data. The hidden checks compare
with ``reference/foundations.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from torch.distributions import MultivariateNormal

F64 = torch.float64


def diag_normal_terms(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A tolerance scale: ``|log_var| + (x - mean)^2 exp(-log_var) + 2``, summed over the last dim.

    A float32 log-density can only be as accurate as the largest term its sum
    cancels; float32 tolerances are this times 1e-5.
    """
    x, mean, log_var = torch.broadcast_tensors(x.double(), mean.double(), log_var.double())
    return (log_var.abs() + (x - mean) ** 2 * (-log_var).exp() + 2.0).sum(-1)


def mvn_log_likelihood(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """sum_n log N(x_n; mean, cov) with ``torch.distributions.MultivariateNormal`` (float64).

    The objective a maximum-likelihood estimate maximises (a full covariance;
    not a graded function). x: ``[N, D]``; mean ``[..., D]`` and cov
    ``[..., D, D]`` may carry batch dims (one Cholesky call for many candidate
    parameters); returns ``[...]``.
    """
    mvn = MultivariateNormal(mean.double(), covariance_matrix=cov.double(), validate_args=False)
    batch = mvn.batch_shape
    return mvn.log_prob(x.double().reshape(len(x), *(1,) * len(batch), x.shape[-1])).sum(0)


# ---------------------------------------------------------------------- quadrature


def simpson_cumulative(density: torch.Tensor, h: float, dims: int) -> torch.Tensor:
    """Cumulative integrals of ``density`` sampled on a uniform grid over its last ``dims`` axes.

    Each of those axes has an odd number ``G`` of points spaced ``h`` apart;
    the result has ``(G - 1) / 2`` entries per axis: entry ``m`` is the
    integral from the first grid point to grid point ``2 (m + 1)`` (composite
    Simpson's rule, error O(h^4)), float64.
    """
    out = density.double()
    for axis in range(-dims, 0):
        out = out.movedim(axis, -1)
        blocks = (h / 3.0) * (out[..., 0:-2:2] + 4.0 * out[..., 1:-1:2] + out[..., 2::2])
        out = blocks.cumsum(-1).movedim(-1, axis)
    return out


def normal_cdf(z: torch.Tensor) -> torch.Tensor:
    """Phi(z), the standard normal CDF (float64)."""
    return torch.special.ndtr(z.double())


# ---------------------------------------------------------------------- mixtures and EM problems


@dataclass(frozen=True)
class Mixture:
    """Diagonal Gaussian mixture parameters: ``[K]``, ``[K, D]``, ``[K, D]``."""

    log_weights: torch.Tensor
    means: torch.Tensor
    log_vars: torch.Tensor

    @property
    def k(self) -> int:
        return self.means.shape[0]

    def to(self, dtype: torch.dtype) -> "Mixture":
        return Mixture(self.log_weights.to(dtype), self.means.to(dtype), self.log_vars.to(dtype))

    def astuple(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.log_weights, self.means, self.log_vars

    def __repr__(self) -> str:
        return f"Mixture(log_weights={self.log_weights!r}, means={self.means!r}, log_vars={self.log_vars!r})"


@dataclass(frozen=True)
class EMProblem:
    """Data ``x [N, D]`` and a starting mixture for one EM step (float64)."""

    x: torch.Tensor
    start: Mixture

    def __repr__(self) -> str:
        return f"EMProblem(x={self.x!r}, start={self.start!r})"


def random_mixture(gen: torch.Generator, k: int, d: int, *, spread: float = 3.0,
                   log_var_range: tuple[float, float] = (-1.0, 1.0)) -> Mixture:
    """A random float64 mixture: normalised log-weights from N(0, 0.25) logits, means N(0, spread^2)."""
    logits = 0.5 * torch.randn(k, generator=gen, dtype=F64)
    means = spread * torch.randn(k, d, generator=gen, dtype=F64)
    lo, hi = log_var_range
    log_vars = lo + (hi - lo) * torch.rand(k, d, generator=gen, dtype=F64)
    return Mixture(torch.log_softmax(logits, 0), means, log_vars)


def sample_mixture(gen: torch.Generator, n: int, mixture: Mixture) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float64 points ``[n, D]`` and their component labels ``[n]``; every component gets >= n // (2K)."""
    k = mixture.k
    fixed = torch.arange(k).repeat_interleave(n // (2 * k))
    rest = torch.multinomial(mixture.log_weights.exp(), n - len(fixed), replacement=True, generator=gen)
    labels = torch.cat([fixed, rest])
    noise = torch.randn(n, mixture.means.shape[1], generator=gen, dtype=F64)
    return mixture.means[labels] + (0.5 * mixture.log_vars[labels]).exp() * noise, labels


def em_start(gen: torch.Generator, x: torch.Tensor, k: int) -> Mixture:
    """An EM starting point for data ``x``: means at distinct data points, variances near the data's.

    No component is empty: component k's mean is a data point, where its own
    density is largest, so N_k = sum_n r_nk > 0. Over 3000 draws (K up to 5)
    the smallest N_k was 1.02; hidden checks that need N_k >= 1 skip a start
    below it (with the reference's counts), public ones need only N_k > 0.
    """
    n, d = x.shape
    means = x[torch.randperm(n, generator=gen)[:k]].clone()
    log_vars = x.var(0).log() + torch.rand(k, d, generator=gen, dtype=F64) - 0.5
    logits = 0.5 * torch.randn(k, generator=gen, dtype=F64)
    return Mixture(torch.log_softmax(logits, 0), means, log_vars)


@st.composite
def em_problems(draw, *, k=st.integers(1, 4), d=st.integers(1, 3), n=st.integers(24, 120)) -> EMProblem:
    """Data sampled from a random mixture and an EM start with no empty component (float64)."""
    k, d, n = draw(k), draw(d), draw(n)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    truth = random_mixture(gen, k, d)
    x, _ = sample_mixture(gen, n, truth)
    return EMProblem(x, em_start(gen, x, k))


def well_conditioned_data(gen: torch.Generator, n: int, d: int) -> torch.Tensor:
    """``[n, d]`` float64 data with a full-rank, moderately conditioned sample covariance."""
    a = torch.randn(d, d, generator=gen, dtype=F64) + 2.0 * torch.eye(d, dtype=F64)
    b = 5.0 * torch.randn(d, generator=gen, dtype=F64)
    return torch.randn(n, d, generator=gen, dtype=F64) @ a.T + b
