"""Judge-side helpers for the hw1 checks: data, mixtures and likelihoods.

No reference code here: every density is torch.distributions' own
(``Normal``, ``MultivariateNormal``, ``MixtureSameFamily``), evaluated in
float64 in the judge, so the public checks can use them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal


def diag_normal_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``Normal(mean, exp(0.5 log_var)).log_prob(x)`` summed over the last dim, in float64."""
    x, mean, log_var = x.double(), mean.double(), log_var.double()
    return Normal(mean, (0.5 * log_var).exp()).log_prob(x).sum(-1)


def diag_normal_terms(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """The size of the summed terms (|log_var| + squared z-score + 2), summed over the last dim.

    Used to scale float32 tolerances: the sum cancels terms this large.
    """
    x, mean, log_var = torch.broadcast_tensors(x.double(), mean.double(), log_var.double())
    return (log_var.abs() + (x - mean) ** 2 * (-log_var).exp() + 2.0).sum(-1)


def mvn_log_likelihood(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """sum_n log N(x_n; mean, cov) with ``torch.distributions.MultivariateNormal`` (float64).

    x: ``[N, D]``; mean ``[..., D]`` and cov ``[..., D, D]`` may carry batch dims (one
    Cholesky call for many candidate parameters); returns ``[...]``.
    """
    mvn = MultivariateNormal(mean.double(), covariance_matrix=cov.double(), validate_args=False)
    batch = mvn.batch_shape
    return mvn.log_prob(x.double().reshape(len(x), *(1,) * len(batch), x.shape[-1])).sum(0)


def mixture_log_prob(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
                     log_vars: torch.Tensor) -> torch.Tensor:
    """log p(x_n) ``[N]`` of a diagonal Gaussian mixture, with ``MixtureSameFamily`` (float64)."""
    components = Independent(Normal(means.double(), (0.5 * log_vars.double()).exp()), 1)
    mixture = MixtureSameFamily(Categorical(logits=log_weights.double()), components)
    return mixture.log_prob(x.double())


def component_table(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
                    log_vars: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` table of log w_k + log N(x_n; mean_k, diag(exp(log_var_k))) (float64)."""
    return log_weights.double() + diag_normal_log_prob(x[:, None, :], means[None], log_vars[None])


def responsibility_counts(x, log_weights, means, log_vars) -> torch.Tensor:
    """N_k = sum_n r_nk ``[K]`` under the given mixture (float64)."""
    table = component_table(x, log_weights, means, log_vars)
    return (table - table.logsumexp(1, keepdim=True)).exp().sum(0)


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


def random_mixture(gen: torch.Generator, k: int, d: int, *, spread: float = 3.0,
                   log_var_range: tuple[float, float] = (-1.0, 1.0)) -> Mixture:
    """A random float64 mixture: normalised log-weights from N(0, 0.25) logits, means N(0, spread^2)."""
    logits = 0.5 * torch.randn(k, generator=gen, dtype=torch.float64)
    means = spread * torch.randn(k, d, generator=gen, dtype=torch.float64)
    lo, hi = log_var_range
    log_vars = lo + (hi - lo) * torch.rand(k, d, generator=gen, dtype=torch.float64)
    return Mixture(torch.log_softmax(logits, 0), means, log_vars)


def sample_mixture(gen: torch.Generator, n: int, mixture: Mixture) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float64 points ``[n, D]`` and their component labels ``[n]``; every component gets >= n // (2K)."""
    k = mixture.k
    fixed = torch.arange(k).repeat_interleave(n // (2 * k))
    rest = torch.multinomial(mixture.log_weights.exp(), n - len(fixed), replacement=True, generator=gen)
    labels = torch.cat([fixed, rest])
    noise = torch.randn(n, mixture.means.shape[1], generator=gen, dtype=torch.float64)
    return mixture.means[labels] + (0.5 * mixture.log_vars[labels]).exp() * noise, labels


def em_start(gen: torch.Generator, x: torch.Tensor, k: int) -> Mixture:
    """An EM starting point for data ``x``: means at distinct data points, variances near the data's."""
    n, d = x.shape
    means = x[torch.randperm(n, generator=gen)[:k]].clone()
    log_vars = x.var(0).log() + torch.rand(k, d, generator=gen, dtype=torch.float64) - 0.5
    logits = 0.5 * torch.randn(k, generator=gen, dtype=torch.float64)
    return Mixture(torch.log_softmax(logits, 0), means, log_vars)


@st.composite
def em_problems(draw, *, k=st.integers(1, 4), d=st.integers(1, 3), n=st.integers(24, 120),
                min_count: float = 1.0) -> tuple[torch.Tensor, Mixture]:
    """(x [N, D], starting mixture) in float64, every component with N_k >= min_count at the start."""
    from hypothesis import assume

    k, d, n = draw(k), draw(d), draw(n)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    truth = random_mixture(gen, k, d)
    x, _ = sample_mixture(gen, n, truth)
    start = em_start(gen, x, k)
    assume(float(responsibility_counts(x, *start.astuple()).min()) >= min_count)
    return x, start


def well_conditioned_data(gen: torch.Generator, n: int, d: int) -> torch.Tensor:
    """``[n, d]`` float64 data with a full-rank, moderately conditioned sample covariance."""
    a = torch.randn(d, d, generator=gen, dtype=torch.float64) + 2.0 * torch.eye(d, dtype=torch.float64)
    b = 5.0 * torch.randn(d, generator=gen, dtype=torch.float64)
    return torch.randn(n, d, generator=gen, dtype=torch.float64) @ a.T + b
