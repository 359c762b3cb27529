"""Judge-side helpers for the hw5 checks: schedules, inputs, fixtures and closed forms.

Public (students read this file with checks_public.py), so no graded function is implemented here.
Expected values are derived from definitions of other quantities:

* the forward process's marginal ``q(x_t | x0)`` by running the recursion of its Markov chain
  (``chain_marginal``; not the closed form of eq. 4);
* the posterior ``q(x_{t-1} | x_t, x0)`` by conditioning the joint Gaussian of
  ``(x_{t-1}, x_t)`` given ``x0`` (not eq. 7 of Ho et al.);
* ``E[x0 | x_t]`` and ``E[eps | x_t]`` of Gaussian data by Gaussian conditioning, and the ancestral
  chain's mean and variance by propagating them exactly through the linear-Gaussian chain that the
  exact noise predictor of Gaussian data makes;
* gradients from the function's own values (``expect_gradients_match_values``: central differences,
  exact where the function is linear or quadratic in the input).

The handout's formulas that pin values (q_sample's, the DDIM step's, the cosine schedule's...) live
in checks_hidden.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from grader.checks import Fixture
from grader.compare import expect, expect_tensor
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


def chain_marginal(betas: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, s) [B], float64: x_t = k x0 + s * (standard normal) under the forward chain run to step t.

    Runs the recursion of the forward Markov chain (Ho et al. 2020, eq. 2),
    x_u = sqrt(1 - betas[u]) x_{u-1} + sqrt(betas[u]) z_u for u = 0 .. t from x_{-1} = x0:
    the coefficient of x0 is k_u = sqrt(1 - betas[u]) k_{u-1} and the accumulated noise has
    variance v_u = (1 - betas[u]) v_{u-1} + betas[u], from k = 1, v = 0 (so t = -1 gives (1, 0)).
    This is the marginal q(x_t | x0) derived from the chain, not from the closed form of eq. 4.
    """
    betas = betas.double()
    k = torch.ones(t.shape, dtype=F64)
    v = torch.zeros(t.shape, dtype=F64)
    for u in range(int(t.max()) + 1 if t.numel() else 0):
        step = t >= u
        k = torch.where(step, (1 - betas[u]).sqrt() * k, k)
        v = torch.where(step, (1 - betas[u]) * v + betas[u], v)
    return k, v.sqrt()


def chain_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """k x0 + s noise with (k, s) = chain_marginal(betas, t): the forward chain's x_t for that noise (float64)."""
    k, s = chain_marginal(betas, t)
    return per_example(k, x0) * x0.double() + per_example(s, x0) * noise.double()


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


def gaussian_x0_given_xt(mu: torch.Tensor, var: torch.Tensor, ab: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
    """E[x0 | x_t] for data x0 ~ N(mu, diag var) and x_t = sqrt(ab) x0 + sqrt(1 - ab) eps (Gaussian conditioning).

    Cov(x0, x_t) = sqrt(ab) var and Var(x_t) = ab var + 1 - ab, so
    E[x0 | x_t] = mu + sqrt(ab) var (x_t - sqrt(ab) mu) / (ab var + 1 - ab). Arguments broadcast (float64).
    """
    mu, var, ab, x_t = mu.double(), var.double(), ab.double(), x_t.double()
    return mu + ab.sqrt() * var * (x_t - ab.sqrt() * mu) / (ab * var + 1 - ab)


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
    """A schedule of T in 1..max_T steps: random betas, a linear ramp, or a geometric ramp from
    tiny early betas to large late ones (up to 0.5, like the cosine schedule's range)."""
    T = draw(st.integers(1, max_T))
    kind = draw(st.sampled_from(["random", "linear", "geometric"]))
    if kind == "random":
        betas = draw(tensors((T,), F64, low=low, high=high))
    elif kind == "linear":
        b0 = draw(st.floats(low, high))
        b1 = draw(st.floats(low, high))
        betas = torch.linspace(b0, b1, T, dtype=F64)
    else:
        b0 = draw(st.floats(low, 10 * low))
        b1 = draw(st.floats(0.1, 0.5))
        betas = b0 * (b1 / b0) ** (torch.arange(T, dtype=F64) / max(T - 1, 1))
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


def ancestral_chain_moments(mu: torch.Tensor, var: torch.Tensor, betas: torch.Tensor,
                            mean0: torch.Tensor, var0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and variance after DDPM ancestral steps t = T-1 .. 0 from x ~ N(mean0, var0), for data
    x0 ~ N(mu, diag var) and its exact noise predictor (``gaussian_eps_coefficients``).

    With the exact predictor, the step's predicted x0 is E[x0 | x_t] (``gaussian_x0_given_xt``; x0 and
    eps are linear in each other given x_t, so predicting one predicts the other), and one step
    x_prev = mean(x) + sqrt(var_t) z is linear-Gaussian, mean(x) being the posterior mean (by
    conditioning) at that x0. We read off mean(x) = a x + c by evaluating at x = 0 and x = 1, then
    recurse m <- a m + c, v <- a^2 v + var_t.
    """
    betas = betas.double()
    alpha_bars = alpha_bars_of(betas)
    m, v = mean0.double().clone(), var0.double().clone()
    for step in range(len(betas) - 1, -1, -1):
        t = torch.full((2,), step, dtype=torch.int64)
        x = torch.stack([torch.zeros_like(m), torch.ones_like(m)])  # [2, D]
        x0_hat = gaussian_x0_given_xt(mu, var, alpha_bars[step], x)
        mean, step_var = posterior_by_conditioning(x0_hat, x, t, betas)
        c = mean[0]
        a = mean[1] - mean[0]
        m, v = a * m + c, a**2 * v + step_var[0]
    return m, v


# ---------------------------------------------------------------------- gradients from the function's own values

def _pick(value, output: tuple[int, ...]):
    for i in output:
        value = value[i]
    return value


def expect_gradients_match_values(student, fn: str, inputs: dict, result, cot: torch.Tensor, wrt: tuple[str, ...],
                                  *, what: str, output: tuple[int, ...] = (), h: float = 1.0) -> None:
    """Autograd's gradients agree with the function's own values, input by input.

    ``inputs``: the positional arguments of ``fn`` by name, in order; ``result``: the
    ``student.call`` that asked for gradients (``wrt`` the same objects, cotangent ``cot``);
    ``wrt``: names of tensor arguments, or ``"model.scale"`` for a fixture's weight. For each,
    along a fixed random direction d, the directional derivative <gradient, d> must equal
    <cot, f(x + h d) - f(x - h d)> / (2h), computed from two more calls of the student's
    function. Central differences are exact (up to rounding) for functions linear or quadratic
    in that input, which every caller makes sure of: no formula of the function is needed.
    """
    rounding = 1e-9 if cot.dtype == F64 else 1e-4
    gen = torch.Generator().manual_seed(20260)
    for label in wrt:
        base, _, weight = label.partition(".")
        x = inputs[base]
        if weight:
            w = x.weights[weight]
            d = torch.randn(w.shape, generator=gen, dtype=F64)
            shifted = [{**inputs, base: Fixture(x.name, x.params,
                                                {**x.weights, weight: (w.double() + sign * h * d).to(w.dtype)})}
                       for sign in (1, -1)]
            moved = [s[base].weights[weight] for s in shifted]
            grad = (result.grad(x) or {}).get(weight)
        else:
            d = torch.randn(x.shape, generator=gen, dtype=F64)
            shifted = [{**inputs, base: (x.double() + sign * h * d).to(x.dtype)} for sign in (1, -1)]
            moved = [s[base] for s in shifted]
            grad = result.grad(x)
        step = (moved[0].double() - moved[1].double()) / 2  # h d as the dtype represents it
        plus, minus = (expect_tensor(_pick(student.call(fn, *s.values()).value, output), shape=cot.shape,
                                     what=f"{what} with {label} moved") for s in shifted)
        change = float((cot.double() * (plus.double() - minus.double())).sum()) / 2
        size = float((cot.double().abs() * (plus.double().abs() + minus.double().abs())).sum()) / 2
        if grad is None:
            expect(abs(change) <= rounding * (1 + size),
                   f"no gradient of {what} reached {label}, but {what} depends on it: keep the computation "
                   "differentiable (no .detach(), .item(), torch.no_grad() or numpy round trips)")
            continue
        grad = expect_tensor(grad, shape=step.shape, what=f"gradient of {what} wrt {label}")
        predicted = float((grad.double() * step).sum())
        slack = rounding * (1 + size + float((grad.double().abs() * step.abs()).sum()))
        expect(abs(predicted - change) <= slack,
               f"autograd's gradient of {what} wrt {label} disagrees with the values of {what}: moving {label} along "
               f"a random direction, the gradient predicts a change of {predicted:.8g}, while {what} itself changes "
               f"by {change:.8g} (central difference, exact here: {what} is linear or quadratic in {label}; "
               f"tolerance {slack:.2g}). Keep the computation differentiable (no .detach(), .item(), "
               "torch.no_grad() or numpy round trips) and compute the value and its gradient the same way.")

