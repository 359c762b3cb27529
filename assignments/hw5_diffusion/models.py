"""Judge-side helpers for the hw5 checks: schedules, inputs, fixtures and gradients.

Public (students read this file with checks_public.py), so no graded function is implemented here,
not even by another route: what q_sample, q_posterior_mean_variance or a sampler step returns is
computed only in closed_forms.py, which the hidden checks alone import. The public checks compare
the student's functions with one another and with their own values:

* gradients from the function's own values (``expect_gradients_match_values``: central differences,
  exact where the function is linear or quadratic in the input);
* per-example coefficients read off the function's own outputs (``per_example_values``: a function
  linear in an input, called with that input all ones and the others 0).

The handout's formulas that pin values (q_sample's, the posterior's, the DDIM step's, the cosine
schedule's...) live in checks_hidden.py.
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


def per_example_values(out: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype, *, what: str) -> torch.Tensor:
    """[B] float64: the values of ``out`` [B, ...], which must be the same over each example's non-batch dims.

    Reads a per-example coefficient off a function linear in an input: called with that input all
    ones and the others 0, it returns the coefficient, broadcast over the example.
    """
    out = expect_tensor(out, shape=shape, dtype=dtype, what=what)
    flat = out.double().reshape(shape[0], -1)
    spread = (flat - flat[:, :1]).abs().amax(dim=1)
    b = int(spread.argmax())
    # one coefficient broadcast gives identical values; 1e-6 relative allows one computed per element in float32
    expect(float(spread[b]) <= 1e-6 * (1 + float(flat[b].abs().max())),
           f"{what}: example {b} holds values {flat[b, :6].tolist()} that differ within the example; a per-example "
           "coefficient ([B], gathered with schedule[t]) must be reshaped to [B, 1, ..., 1] and broadcast over "
           "the example's other dims")
    return flat[:, 0]


def alpha_bars_of(betas: torch.Tensor) -> torch.Tensor:
    """prod_{s <= t} (1 - betas[s]), in float64."""
    return torch.cumprod(1.0 - betas.double(), dim=0)


def ab_at(alpha_bars: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """alpha_bars[t] in float64, with alpha_bar = 1 where t == -1 (before step 0)."""
    ab = alpha_bars.double()[t.clamp(min=0)]
    return torch.where(t < 0, torch.ones_like(ab), ab)


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


# ---------------------------------------------------------------------- gradients from the function's own values

def _pick(value, output: tuple[int, ...]):
    for i in output:
        value = value[i]
    return value


DIRECTION_SEED = 0x5EED_D1F5  # call-seed offset of expect_gradients_match_values' directions


def expect_gradients_match_values(student, fn: str, inputs: dict, result, cot: torch.Tensor, wrt: tuple[str, ...],
                                  *, what: str, output: tuple[int, ...] = (), h: float = 1.0) -> None:
    """Autograd's gradients agree with the function's own values, input by input.

    ``inputs``: the positional arguments of ``fn`` by name, in order; ``result``: the
    ``student.call`` that asked for gradients (``wrt`` the same objects, cotangent ``cot``);
    ``wrt``: names of tensor arguments, or ``"model.scale"`` for a fixture's weight. For each,
    along a random direction d (from a keyed judge-side seed, drawn after the reply: the
    worker cannot know it when it reports), the directional derivative <gradient, d> must equal
    <cot, f(x + h d) - f(x - h d)> / (2h), computed from two more calls of the student's
    function. Central differences are exact (up to rounding) for functions linear or quadratic
    in that input, which every caller makes sure of: no formula of the function is needed.
    """
    rounding = 1e-9 if cot.dtype == F64 else 1e-4
    gen = torch.Generator().manual_seed(student._call_seed(DIRECTION_SEED) % 2**63)
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

