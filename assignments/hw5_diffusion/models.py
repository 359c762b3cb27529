"""Judge-side helpers for the hw5 checks: schedules, inputs, fixtures and closed forms.

No reference code here. Expected values are derived independently of the
handout's formulas where the spec allows it:

* the posterior ``q(x_{t-1} | x_t, x0)`` by conditioning the joint Gaussian of
  ``(x_{t-1}, x_t)`` given ``x0`` (not eq. 7 of Ho et al.);
* the ancestral chain's mean and variance by propagating them exactly through
  the linear-Gaussian chain that an affine noise predictor makes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from grader.checks import Fixture
from grader.strategies import tensors

F64 = torch.float64


def bshape(x: torch.Tensor) -> tuple[int, ...]:
    """Shape that makes a [B] tensor broadcast over x's non-batch dims."""
    return (-1,) + (1,) * (x.dim() - 1)


def per_example(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return values.reshape(bshape(x))


def alpha_bars_of(betas: torch.Tensor) -> torch.Tensor:
    """prod_{s <= t} (1 - betas[s]), in float64."""
    return torch.cumprod(1.0 - betas.double(), dim=0)


def ab_at(alpha_bars: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """alpha_bars[t] in float64, with alpha_bar = 1 where t == -1 (before step 0)."""
    ab = alpha_bars.double()[t.clamp(min=0)]
    return torch.where(t < 0, torch.ones_like(ab), ab)


def q_sample_formula(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """sqrt(ab) x0 + sqrt(1 - ab) noise in float64 (ab = 1 where t == -1)."""
    ab = per_example(ab_at(alpha_bars, t), x0)
    return ab.sqrt() * x0.double() + (1 - ab).sqrt() * noise.double()


def posterior_by_conditioning(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                              betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(x_{t-1} | x_t, x0) from the joint Gaussian of (x_{t-1}, x_t) given x0, in float64.

    Given x0: x_{t-1} = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) z1 and
    x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z2, so per dim
    Var x_{t-1} = v = 1 - ab_prev, Cov = sqrt(alpha_t) v, Var x_t = alpha_t v + beta_t;
    conditioning gives mean = m_prev + Cov / Var_t (x_t - m_t), var = v - Cov^2 / Var_t.
    At t == 0 (ab_prev = 1) this is (x0, 0). Returns (mean [B, ...], var [B, ...]).
    """
    betas = betas.double()
    alpha_bars = alpha_bars_of(betas)
    beta_t = betas[t]
    ab_prev = ab_at(alpha_bars, t - 1)
    v = 1.0 - ab_prev
    cov = (1.0 - beta_t).sqrt() * v
    var_t = (1.0 - beta_t) * v + beta_t
    gain = per_example(cov / var_t, x_t)
    m_prev = per_example(ab_prev.sqrt(), x0) * x0.double()
    m_t = per_example((1.0 - beta_t).sqrt() * ab_prev.sqrt(), x0) * x0.double()
    mean = m_prev + gain * (x_t.double() - m_t)
    var = per_example(v - cov**2 / var_t, x_t).expand(x_t.shape)
    return mean, var


def x0_from_noise(x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """The x0 for which q_sample(x0, t, eps) = x_t (solved in float64)."""
    ab = per_example(ab_at(alpha_bars, t), x_t)
    return (x_t.double() - (1 - ab).sqrt() * eps.double()) / ab.sqrt()


def ddim_sigma(a: torch.Tensor, a_prev: torch.Tensor, eta: float) -> torch.Tensor:
    """Song et al. (2021), eq. 16: eta sqrt((1 - a_prev)/(1 - a)) sqrt(1 - a/a_prev)."""
    return eta * ((1 - a_prev) / (1 - a)).sqrt() * (1 - a / a_prev).sqrt()


# ---------------------------------------------------------------------- drawing inputs

@dataclass(frozen=True)
class Case:
    """One batch of diffusion inputs: data, timesteps, noise and a schedule."""

    x0: torch.Tensor  # [B, ...] data dtype
    t: torch.Tensor  # [B] int64 in 0..T-1
    noise: torch.Tensor  # [B, ...] data dtype
    betas: torch.Tensor  # [T] schedule dtype
    alpha_bars: torch.Tensor  # [T] schedule dtype (cumprod computed in float64, then cast)

    @property
    def dtype(self) -> torch.dtype:
        return self.x0.dtype

    def __repr__(self) -> str:
        return (f"Case(x0={self.x0!r}, t={self.t!r}, noise={self.noise!r}, betas={self.betas!r}, "
                f"alpha_bars={self.alpha_bars!r})")


def data_shapes(max_side: int = 4, min_dims: int = 1) -> st.SearchStrategy[tuple]:
    """Batch-first shapes: [B], [B, D], [B, C, W], [B, C, H, W] (at least min_dims dims)."""
    return st.integers(min_dims, 4).flatmap(
        lambda nd: st.tuples(*[st.integers(1, 5)] + [st.integers(1, max_side)] * (nd - 1)))


@st.composite
def betas_strategy(draw, dtype=F64, max_T: int = 30, low: float = 1e-3, high: float = 0.3) -> torch.Tensor:
    """A schedule of T in 1..max_T steps: random betas, a linear ramp, or a cosine schedule."""
    T = draw(st.integers(1, max_T))
    kind = draw(st.sampled_from(["random", "linear", "cosine"]))
    if kind == "random":
        betas = draw(tensors((T,), F64, low=low, high=high))
    elif kind == "linear":
        b0 = draw(st.floats(low, high))
        b1 = draw(st.floats(low, high))
        betas = torch.linspace(b0, b1, T, dtype=F64)
    else:
        u = torch.arange(T + 1, dtype=F64)
        f = torch.cos((u / T + 0.008) / 1.008 * torch.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(min=low, max=0.5)
    return betas.to(dtype)


@st.composite
def cases(draw, shape=None, dtype=None, schedule_dtype=None, *, x_bound: float = 5.0, max_T: int = 30,
          with_zero: bool = True) -> Case:
    """A Case. Float64 data gets a float64 schedule; float32 data a float32 or float64 one (mixed)."""
    shape = draw(data_shapes() if shape is None else st.just(shape) if isinstance(shape, tuple) else shape)
    dtype = draw(st.sampled_from([torch.float32, F64]) if dtype is None else st.just(dtype))
    if schedule_dtype is None:
        schedule_dtype = draw(st.sampled_from([torch.float32, F64])) if dtype == torch.float32 else F64
    betas = draw(betas_strategy(F64, max_T=max_T))
    T = len(betas)
    t = torch.tensor(draw(st.lists(st.integers(0, T - 1), min_size=shape[0], max_size=shape[0])), dtype=torch.int64)
    if with_zero and shape[0] > 1 and draw(st.booleans()):
        t[0] = 0
    x0 = draw(tensors(shape, dtype, low=-x_bound, high=x_bound))
    noise = draw(tensors(shape, dtype, low=-4.0, high=4.0))
    return Case(x0, t, noise, betas.to(schedule_dtype), alpha_bars_of(betas).to(schedule_dtype))


# ---------------------------------------------------------------------- fixtures

def fixed_eps(eps: torch.Tensor) -> Fixture:
    """A model returning ``eps`` whatever its input."""
    return Fixture("fixed_eps", {}, {"eps": eps})


def noise_oracle(x0: torch.Tensor, alpha_bars: torch.Tensor) -> Fixture:
    """A model recovering the true noise from x_t = q_sample(x0, t, noise)."""
    return Fixture("noise_oracle", {}, {"x0": x0, "alpha_bars": alpha_bars})


def affine_eps(scale: torch.Tensor, shift: torch.Tensor) -> Fixture:
    """eps_hat = scale[t] * x_t + shift[t]; scale, shift: [T, *event]."""
    return Fixture("affine_eps", {}, {"scale": scale, "shift": shift})


def gaussian_eps_coefficients(mu: torch.Tensor, var: torch.Tensor,
                              alpha_bars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) [T, D] of the exact noise predictor for data x0 ~ N(mu, diag var).

    x_t = sqrt(ab) x0 + sqrt(1 - ab) eps is jointly Gaussian with eps, so
    E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab var + 1 - ab).
    """
    ab = alpha_bars.double()[:, None]
    scale = (1 - ab).sqrt() / (ab * var.double() + 1 - ab)
    return scale, -scale * ab.sqrt() * mu.double()


def ancestral_chain_moments(scale: torch.Tensor, shift: torch.Tensor, betas: torch.Tensor,
                            mean0: torch.Tensor, var0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and variance after DDPM ancestral steps t = T-1 .. 0 from x ~ N(mean0, var0).

    With eps_hat = scale[t] x + shift[t], one step x_prev = mean(x) + sqrt(var_t) z is linear-Gaussian,
    mean(x) being the posterior mean (by conditioning) at x0_hat(x) = (x - sqrt(1-ab) eps_hat)/sqrt(ab).
    We read off mean(x) = a x + c by evaluating at x = 0 and x = 1, then recurse
    m <- a m + c, v <- a^2 v + var_t.
    """
    betas = betas.double()
    alpha_bars = alpha_bars_of(betas)
    m, v = mean0.double().clone(), var0.double().clone()
    for step in range(len(betas) - 1, -1, -1):
        t = torch.full((2,), step, dtype=torch.int64)
        x = torch.stack([torch.zeros_like(m), torch.ones_like(m)])  # [2, D]
        eps = scale[step] * x + shift[step]
        x0_hat = x0_from_noise(x, t, eps, alpha_bars)
        mean, var = posterior_by_conditioning(x0_hat, x, t, betas)
        c = mean[0]
        a = mean[1] - mean[0]
        m, v = a * m + c, a**2 * v + var[0]
    return m, v
