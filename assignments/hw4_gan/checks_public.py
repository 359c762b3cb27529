"""hw4_gan public checks: properties that need no reference implementation.

Students run these with `dgm-grade check gan.py`. Nothing here implements a
graded function: the losses are the handout's one-line definitions, so their
values and gradients are pinned by hidden checks (checks_hidden.py) that
compare with the reference, and every public check counts only when those pass
(``requires``). What the public checks know instead:

* gradients: the reported gradients are the derivative of the student's own
  values (central differences the judge computes from plain float64 calls,
  ``grader/verify.py: expect_derivative``), and a float32 call's gradients
  agree with the float64 ones; also at logits of ±100;
* divergences at the optimal discriminator D* = p / (p + q) on a discrete
  support (Goodfellow et al. 2014, Theorem 1: the minimax loss is
  log 4 - 2 JSD(p, q) there), where the losses are stationary (finite
  differences of their values vanish);
* saturation of the minimax generator loss where D(G(z)) is near 0;
* symmetries of the LSGAN and Wasserstein losses;
* critics whose input gradients are known (linear: w), so the penalty has a
  closed form; and F = G^-1, where the cycle loss is zero.

Nothing here draws randomness inside the student's functions, so no check is
statistical: every expected value is exact up to the dtype's rounding.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks, Fixture
from grader.compare import expect, expect_close, expect_tensor
from grader.strategies import dtypes, tensors
from grader.verify import expect_derivative

from .models import (ARGUMENTS, BATCHES, CREATE_GRAPH, DIFFERENTIABLE, LOG4, STABILITY, batches_with_distributions,
                     draw_distributions, draw_loss_inputs, expect_untouched, handout, invertible_pair,
                     jensen_shannon, kl, linear_critic, linear_map, quadratic_critic, value_tolerance)

checks = Checks()

# The checks pinning each function's value and gradients on generic inputs: hidden comparisons with the
# reference (no public check pins a value: the losses are one-line definitions). Every public check of a
# function requires them, so a constant, or an answer right only in the special cases, scores nothing.
PINS = {
    "d_loss_minimax": ("d_minimax_values",),
    "g_loss_minimax": ("g_minimax_values",),
    "g_loss_nonsaturating": ("g_ns_values",),
    "d_loss_lsgan": ("d_lsgan_values",),
    "g_loss_lsgan": ("g_lsgan_values",),
    "d_loss_wgan": ("d_wgan_values",),
    "g_loss_wgan": ("g_wgan_values",),
    "gradient_penalty": ("gp_quadratic_closed_form", "gp_parameter_gradients_closed_form", "gp_mlp_reference"),
    "cycle_consistency_loss": ("cycle_translation_closed_form", "cycle_affine_reference", "cycle_mlp_reference"),
}


# ---------------------------------------------------------------------- gradients against the code's own values

F64 = torch.float64
F32_GRAD_ATOL = 1e-5  # float32 gradients against float64 ones, relative to the largest entry (own_gradients)


def own_gradients(student, fn: str, args: tuple, wide: tuple, wrt: dict[str, int], *,
                  value: Callable[[Any, torch.dtype], Any], hint: str, what: str, unused: tuple[str, ...] = ()):
    """The call of ``fn`` on ``args`` with gradients for ``wrt`` (name -> position in ``args``: a tensor, or a
    Fixture: a dict weight -> gradient), each checked against ``fn``'s own values; returns the CallResult.

    ``wide``: the same arguments in float64 (Fixtures with float64 weights; ignored when ``args`` is
    float64). The float64 call's gradients must match central differences of ``fn``'s float64 values along
    a random direction (``expect_derivative``; a difference quotient needs float64). A float32 call's
    gradients must equal those float64 gradients within float32 rounding: 1e-3 relative plus 1e-5 of the
    largest float64 gradient entry (float32 rounds each term to 6e-8 relative; a gradient entry of the penalty
    or the cycle loss sums up to a few hundred terms as large as the largest entry, which may cancel).
    ``value(result, dtype)`` checks the form of a call's value; ``unused``: Fixture weights whose gradient
    may be missing (they do not change the value). The drawn call returns the inputs after it
    (``expect_untouched``).
    """
    def reached(r, objects: tuple, where: str) -> dict:
        grads = {}
        for name, i in wrt.items():
            g = r.grad(objects[i])
            if isinstance(objects[i], Fixture):
                g = g if isinstance(g, dict) else {}
                for k in objects[i].weights:
                    expect(g.get(k) is not None or k in unused, f"no gradient reached {name}'s {k}{where} ({hint})")
            else:
                expect(g is not None, f"no gradient reached {name}{where} ({hint})")
            grads[name] = g
        return grads

    dtype = next(a for a in args if isinstance(a, torch.Tensor)).dtype
    wide = args if dtype == F64 else wide  # the same objects: one call, whose gradients are checked
    r = student.call(fn, *args, wrt=tuple(args[i] for i in wrt.values()), return_inputs=True)
    value(r.value, dtype)
    grads = reached(r, args, "")
    r64 = r if dtype == F64 else student.call(fn, *wide, wrt=tuple(wide[i] for i in wrt.values()))
    value(r64.value, F64)
    wide_grads = reached(r64, wide, " in float64")
    expect_derivative(student, fn, wide, r64, tuple(wide[i] for i in wrt.values()),
                      what=f"the gradient of {fn}{what} with respect to ({', '.join(wrt)}), inputs in float64")
    if dtype != F64:
        for name in wrt:
            pairs = (grads[name].items() if isinstance(grads[name], dict) else [("", grads[name])])
            for k, g in pairs:
                expected = wide_grads[name].get(k) if k else wide_grads[name]
                if g is None or expected is None:  # an unused weight: None and zeros are both right
                    continue
                label = f"{name}.{k}" if k else name
                expect_close(g, expected.to(dtype), atol=F32_GRAD_ATOL * (1 + float(expected.abs().max())),
                             what=f"d {fn} / d {label}{what} in {str(dtype).removeprefix('torch.')} against your "
                                  "float64 gradient at the same point")
    return r


def check_gradients(student, fn: str, inputs: dict[str, torch.Tensor], *, where: str = "") -> dict[str, torch.Tensor]:
    """A scalar in the inputs' dtype, inputs untouched, and gradients with respect to every argument that are
    the derivative of the loss's own values (``own_gradients``); returns them (name -> gradient)."""
    args = tuple(inputs.values())
    note = STABILITY if fn in LOGIT_LOSSES else BATCHES

    def scalar(value, dtype):
        expect_tensor(value, shape=(), dtype=dtype, what=f"{fn}{where} (a scalar in the inputs' dtype; {note})")

    r = own_gradients(student, fn, args, tuple(t.double() for t in args), {name: i for i, name in enumerate(inputs)},
                      value=scalar, hint=f"build the loss from torch operations on it; {DIFFERENTIABLE}", what=where)
    expect_untouched(r, **inputs)
    return {name: r.grad(t) for name, t in inputs.items()}


def add_gradient_check(fn: str, check_id: str) -> None:
    """Gradients with respect to every argument, on generic inputs, consistent with the loss's own values."""

    def body(student, data):
        check_gradients(student, fn, draw_loss_inputs(data, fn))

    body.__name__ = body.__qualname__ = check_id  # the check's id
    checks.add(fn, "differentiable: gradients on generic inputs agree with finite differences of its values "
                   "(float32 with float64)", requires=PINS[fn])(given(data=st.data())(body))


LOGIT_LOSSES = ("d_loss_minimax", "g_loss_minimax", "g_loss_nonsaturating")
EXTREME_LOGITS = [-100.0, -40.0, -10.0, -1.0, 0.0, 1.0, 10.0, 40.0, 100.0]


def add_extremes_check(fn: str, check_id: str) -> None:
    """Finite values and gradients on a batch of logits from -100 to 100 (every argument), float32 and 64: the
    gradients agree with finite differences of the float64 values, and float32's with float64's."""

    def body(student):
        for dtype in (torch.float32, torch.float64):
            name = str(dtype).removeprefix("torch.")
            inputs = {arg: torch.tensor(EXTREME_LOGITS, dtype=dtype) for arg in ARGUMENTS[fn]}
            check_gradients(student, fn, inputs, where=f" on logits {EXTREME_LOGITS} in {name}")

    body.__name__ = body.__qualname__ = check_id  # the check's id
    checks.add(fn, "finite value and gradients at logits from -100 to 100 in float32 and float64, agreeing with "
                   "finite differences of its values", requires=PINS[fn])(body)


# ---------------------------------------------------------------------- d_loss_minimax

add_gradient_check("d_loss_minimax", "d_minimax_gradients")
add_extremes_check("d_loss_minimax", "d_minimax_extremes")


def optimal_batches(counts_p: list[int], counts_q: list[int], seed: int):
    """(p, q, real_index, fake_index, optimal_logits, optimal_d): see models.batches_with_distributions."""
    return batches_with_distributions(counts_p, counts_q, torch.Generator().manual_seed(seed))


def rounded(t: torch.Tensor) -> list[float]:
    return [round(v, 4) for v in t.tolist()]


@checks.add("d_loss_minimax", "equals log 4 - 2 JSD(p, q) at the optimal discriminator D* = p / (p + q)", points=2,
            requires=PINS["d_loss_minimax"])
@given(data=st.data())
def d_minimax_jsd(student, data):
    """Goodfellow et al. (2014), Theorem 1: C(G) = -log 4 + 2 JSD. The real batch holds support point k
    counts_p[k] times and the fake batch counts_q[k] times, so batch means are exact expectations under p and q."""
    counts_p, counts_q, seed = draw_distributions(data)
    dtype = data.draw(dtypes(), label="dtype")
    column = data.draw(st.booleans(), label="batches shaped [B, 1] (else [B])")
    p, q, real_index, fake_index, logits, _ = optimal_batches(counts_p, counts_q, seed)
    real, fake = logits[real_index], logits[fake_index]
    if column:
        real, fake = real[:, None], fake[:, None]
    got = student.d_loss_minimax(real.to(dtype), fake.to(dtype))
    expected = LOG4 - 2 * jensen_shannon(p, q)
    expect_close(got, torch.tensor(expected, dtype=dtype),
                 what=f"d_loss_minimax at D* for p = {rounded(p)}, q = {rounded(q)}: {handout('d_loss_minimax')} "
                      f"with D = D* is log 4 - 2 JSD(p, q) = {expected:.6g}")


# The step of the stationarity checks' central differences, and their tolerance: at a stationary point the
# difference (L(x + h v) - L(x - h v)) / 2h of a correct loss is its truncation, h^2 / 6 times the third
# derivative along v, <= 1e-8 (the logistic's third derivative is at most 1/8 per example, two batch means,
# |v| <= 3 per support point; zero for the LSGAN's square), plus the rounding of two float64 values of a few units,
# 1e-14 / 2h = 5e-11. A loss that is not stationary at D* has a slope of order 1e-2 or more along a random v.
STATIONARY_STEP = 1e-4
STATIONARY_ATOL = 1e-7


def slope_at(student, fn: str, real: torch.Tensor, fake: torch.Tensor, v_real: torch.Tensor,
             v_fake: torch.Tensor) -> float:
    """(L(x + h v) - L(x - h v)) / 2h: the slope of ``fn``'s own float64 values along v at x = (real, fake)."""
    h = STATIONARY_STEP
    up = expect_tensor(student.call(fn, real + h * v_real, fake + h * v_fake).value, shape=(), dtype=F64,
                       what=f"{fn} near D*")
    down = expect_tensor(student.call(fn, real - h * v_real, fake - h * v_fake).value, shape=(), dtype=F64,
                         what=f"{fn} near D*")
    return (up.item() - down.item()) / (2 * h)


def expect_stationary(slope: float, fn: str) -> None:
    expect(abs(slope) <= STATIONARY_ATOL,
           f"{fn} is not stationary at D* = p / (p + q): along a direction that moves the entries of each support "
           f"point together, its values change at a rate of {slope:.6g} (central differences with step "
           f"{STATIONARY_STEP:g}; tolerance {STATIONARY_ATOL:g}); D* minimises {handout(fn)}")


@checks.add("d_loss_minimax", "is minimised by D* = p / (p + q): stationary there (finite differences of its values "
            "vanish), larger elsewhere", requires=PINS["d_loss_minimax"])
@given(data=st.data())
def d_minimax_optimum(student, data):
    """v moves every copy of support point k by the same delta_k (the discriminator is a function of the point)."""
    counts_p, counts_q, seed = draw_distributions(data)
    gen = torch.Generator().manual_seed(seed)
    _, _, real_index, fake_index, logits, _ = batches_with_distributions(counts_p, counts_q, gen)
    real, fake = logits[real_index], logits[fake_index]
    at_optimum = expect_tensor(student.d_loss_minimax(real, fake), shape=(), dtype=F64, what="d_loss_minimax at D*")
    delta = 0.5 * torch.randn(len(counts_p), generator=gen, dtype=F64)
    expect_stationary(slope_at(student, "d_loss_minimax", real, fake, delta[real_index], delta[fake_index]),
                      "d_loss_minimax")
    moved = expect_tensor(student.d_loss_minimax(real + delta[real_index], fake + delta[fake_index]), shape=(),
                          what="d_loss_minimax away from D*")
    expect(moved.item() >= at_optimum.item() - 1e-12,
           f"moving the logits away from D* lowered the loss from {at_optimum.item():.10g} to {moved.item():.10g}; "
           f"D* = p / (p + q) must minimise {handout('d_loss_minimax')}")


# ---------------------------------------------------------------------- g_loss_minimax


def batch_gradient(student, fn: str, fake: torch.Tensor) -> torch.Tensor:
    """batch size * d fn(fake) / d fake [B] or [B, 1], in float64 (the per-example gradient of a batch mean),
    checked against fn's own values (``check_gradients``)."""
    g = check_gradients(student, fn, {"fake_logits": fake})["fake_logits"]
    return expect_tensor(g, shape=fake.shape, dtype=fake.dtype, what="d loss / d fake_logits").double() * fake.numel()


add_gradient_check("g_loss_minimax", "g_minimax_gradients")
add_extremes_check("g_loss_minimax", "g_minimax_extremes")


@checks.add("g_loss_minimax", "saturates: its gradient vanishes where D(G(z)) is near 0",
            requires=PINS["g_loss_minimax"])
@given(data=st.data())
def g_minimax_saturates(student, data):
    """For l <= -8, D(G(z)) = sigmoid(l) <= 3.4e-4 and log(1 - D) is nearly flat: its slope per example is
    below 1e-3 in size (the reason for the non-saturating loss). The gradient is the one check_gradients verified
    against the loss's own values."""
    fake = draw_loss_inputs(data, "g_loss_minimax", low=-30.0, high=-8.0)["fake_logits"]
    scaled = batch_gradient(student, "g_loss_minimax", fake)
    expect(bool((scaled <= 0).all()) and bool((scaled.abs() <= 1e-3).all()),
           f"where D(G(z)) = sigmoid(l) is near 0 (l in [-30, -8]), log(1 - D) is almost flat and does not increase "
           f"with l ({handout('g_loss_minimax')}): batch size * gradient must be in [-1e-3, 0]; got "
           f"{scaled.flatten().tolist()[:8]}")


@checks.add("g_loss_minimax", "equals KL(q || m) - log 2, m = (p + q) / 2, at the optimal discriminator "
                              "D* = p / (p + q)",
            requires=PINS["g_loss_minimax"])
@given(data=st.data())
def g_minimax_oracle(student, data):
    """log(1 - D*) = log(q / (p + q)) = log(q / m) - log 2, averaged under q (the fake batch)."""
    counts_p, counts_q, seed = draw_distributions(data)
    dtype = data.draw(dtypes(), label="dtype")
    column = data.draw(st.booleans(), label="batch shaped [B, 1] (else [B])")
    p, q, _, fake_index, logits, _ = optimal_batches(counts_p, counts_q, seed)
    fake = logits[fake_index][:, None] if column else logits[fake_index]
    expected = kl(q, 0.5 * (p + q)) - math.log(2)
    expect_close(student.g_loss_minimax(fake.to(dtype)), torch.tensor(expected, dtype=dtype),
                 atol=value_tolerance(dtype),
                 what=f"g_loss_minimax at D* for p = {rounded(p)}, q = {rounded(q)}: {handout('g_loss_minimax')} "
                      f"with D = D* under q is KL(q || m) - log 2 = {expected:.6g}")


# ---------------------------------------------------------------------- g_loss_nonsaturating

add_gradient_check("g_loss_nonsaturating", "g_ns_gradients")
add_extremes_check("g_loss_nonsaturating", "g_ns_extremes")


@checks.add("g_loss_nonsaturating", "does not saturate: its gradient stays near -1 / B where D(G(z)) is near 0",
            requires=PINS["g_loss_nonsaturating"])
@given(data=st.data())
def g_ns_does_not_saturate(student, data):
    fake = draw_loss_inputs(data, "g_loss_nonsaturating", low=-30.0, high=-8.0)["fake_logits"]
    scaled = batch_gradient(student, "g_loss_nonsaturating", fake)
    expect(bool(((scaled + 1).abs() <= 1e-3).all()),
           f"where D(G(z)) = sigmoid(l) is near 0 (l in [-30, -8]), -log D falls with slope about -1 in l "
           f"({handout('g_loss_nonsaturating')}): batch size * gradient must be within 1e-3 of -1; got "
           f"{scaled.flatten().tolist()[:8]}")


@checks.add("g_loss_nonsaturating", "equals log 2 + KL(q || p) - KL(q || m), m = (p + q) / 2, at the optimal "
                                    "discriminator D* = p / (p + q)", requires=PINS["g_loss_nonsaturating"])
@given(data=st.data())
def g_ns_oracle(student, data):
    """-log D* = -log(p / (p + q)) = log 2 + log(q / p) - log(q / m), averaged under q (the fake batch)."""
    counts_p, counts_q, seed = draw_distributions(data)
    dtype = data.draw(dtypes(), label="dtype")
    column = data.draw(st.booleans(), label="batch shaped [B, 1] (else [B])")
    p, q, _, fake_index, logits, _ = optimal_batches(counts_p, counts_q, seed)
    fake = logits[fake_index][:, None] if column else logits[fake_index]
    expected = math.log(2) + kl(q, p) - kl(q, 0.5 * (p + q))
    expect_close(student.g_loss_nonsaturating(fake.to(dtype)), torch.tensor(expected, dtype=dtype),
                 atol=value_tolerance(dtype),
                 what=f"g_loss_nonsaturating at D* for p = {rounded(p)}, q = {rounded(q)}: "
                      f"{handout('g_loss_nonsaturating')} with D = D* under q is log 2 + KL(q || p) - KL(q || m) "
                      f"= {expected:.6g}")


# ---------------------------------------------------------------------- LSGAN

add_gradient_check("d_loss_lsgan", "d_lsgan_gradients")


@checks.add("d_loss_lsgan", "at D* = p / (p + q) is stationary (finite differences of its values vanish) and equals "
            "0.5 sum_k p_k q_k / (p_k + q_k)", requires=PINS["d_loss_lsgan"])
@given(data=st.data())
def d_lsgan_optimum(student, data):
    """Mao et al. (2017), eq. 4 with a = 0, b = 1: D* = p / (p + q); the minimum value follows by substitution.
    Stationarity is checked on the float64 outputs, moving every copy of support point k by the same delta_k."""
    counts_p, counts_q, seed = draw_distributions(data)
    dtype = data.draw(dtypes(), label="dtype")
    gen = torch.Generator().manual_seed(seed)
    p, q, real_index, fake_index, _, d_star = batches_with_distributions(counts_p, counts_q, gen)
    real, fake = d_star[real_index], d_star[fake_index]
    expect_close(student.d_loss_lsgan(real.to(dtype), fake.to(dtype)), (0.5 * (p * q / (p + q)).sum()).to(dtype),
                 atol=value_tolerance(dtype),
                 what=f"d_loss_lsgan at D* for p = {rounded(p)}, q = {rounded(q)} ({handout('d_loss_lsgan')} "
                      "with D = D* = p / (p + q))")
    delta = 0.5 * torch.randn(len(counts_p), generator=gen, dtype=F64)
    expect_stationary(slope_at(student, "d_loss_lsgan", real, fake, delta[real_index], delta[fake_index]),
                      "d_loss_lsgan")


add_gradient_check("g_loss_lsgan", "g_lsgan_gradients")


@checks.add("g_loss_lsgan", "zero where every output is 1, and symmetric about it: loss(1 + d) = loss(1 - d)",
            requires=PINS["g_loss_lsgan"])
@given(data=st.data())
def g_lsgan_minimum(student, data):
    d = draw_loss_inputs(data, "g_loss_lsgan", low=-10.0, high=10.0)["fake_out"]
    what = handout("g_loss_lsgan")
    expect_close(student.g_loss_lsgan(torch.ones_like(d)), torch.zeros((), dtype=d.dtype),
                 atol=value_tolerance(d.dtype), what=f"g_loss_lsgan where every output is 1 ({what})")
    above, below = student.g_loss_lsgan(1 + d), student.g_loss_lsgan(1 - d)
    above = expect_tensor(above, shape=(), dtype=d.dtype, what="g_loss_lsgan(1 + d)")
    expect_close(below, above, atol=value_tolerance(d.dtype),
                 what=f"g_loss_lsgan(1 - d) against g_loss_lsgan(1 + d) (the square in {what} is symmetric about 1)")


# ---------------------------------------------------------------------- WGAN

add_gradient_check("d_loss_wgan", "d_wgan_gradients")


def shift_tolerance(dtype: torch.dtype) -> float:
    """Means of outputs up to 110 computed two ways differ by a few float32 ulps of 100 (7.6e-6 each)."""
    return 1e-3 if dtype == torch.float32 else 1e-9


@checks.add("d_loss_wgan", "swapping real and fake negates it; adding one constant to both leaves it unchanged",
            requires=PINS["d_loss_wgan"])
@given(data=st.data())
def d_wgan_symmetries(student, data):
    inputs = draw_loss_inputs(data, "d_loss_wgan")
    real, fake = inputs["real_out"], inputs["fake_out"]
    shift = data.draw(st.floats(-10, 10), label="shift (added to every output)")
    what = handout("d_loss_wgan")
    atol = shift_tolerance(real.dtype)
    value = expect_tensor(student.d_loss_wgan(real, fake), shape=(), dtype=real.dtype, what="d_loss_wgan(real, fake)")
    expect_close(student.d_loss_wgan(fake, real), -value, atol=atol,
                 what=f"d_loss_wgan(fake, real) against -d_loss_wgan(real, fake) ({what})")
    expect_close(student.d_loss_wgan(real + shift, fake + shift), value, atol=atol,
                 what=f"d_loss_wgan(real + shift, fake + shift) against d_loss_wgan(real, fake) ({what})")


add_gradient_check("g_loss_wgan", "g_wgan_gradients")


@checks.add("g_loss_wgan", "odd: loss(-out) = -loss(out); adding a constant c to every output lowers it by c",
            requires=PINS["g_loss_wgan"])
@given(data=st.data())
def g_wgan_symmetries(student, data):
    fake = draw_loss_inputs(data, "g_loss_wgan")["fake_out"]
    shift = data.draw(st.floats(-10, 10), label="shift (added to every output)")
    what = handout("g_loss_wgan")
    atol = shift_tolerance(fake.dtype)
    value = expect_tensor(student.g_loss_wgan(fake), shape=(), dtype=fake.dtype, what="g_loss_wgan(fake_out)")
    expect_close(student.g_loss_wgan(-fake), -value, atol=atol,
                 what=f"g_loss_wgan(-fake_out) against -g_loss_wgan(fake_out) ({what})")
    expect_close(student.g_loss_wgan(fake + shift), value - shift, atol=atol,
                 what=f"g_loss_wgan(fake_out + shift) against g_loss_wgan(fake_out) - shift ({what})")


# ---------------------------------------------------------------------- gradient_penalty


def draw_penalty_inputs(data) -> dict:
    """real, fake [B, D] or [B, C, H, W] in [-1, 1], alpha [B] in [0, 1], the critic's output shape and seed.

    The last dim sometimes equals B, so alpha broadcast against the last dim instead of the batch is caught.
    """
    dtype = data.draw(dtypes(), label="dtype")
    b = data.draw(st.integers(1, 5), label="batch size B")
    last = data.draw(st.one_of(st.just(b), st.integers(1, 6)), label="last dim")
    image = data.draw(st.booleans(), label="images [B, C, H, W] (else vectors [B, D])")
    shape = ((b, data.draw(st.integers(1, 3), label="C"), data.draw(st.integers(1, 3), label="H"), min(last, 4))
             if image else (b, last))
    return {
        "real": data.draw(tensors(shape, dtype, low=-1.0, high=1.0), label="real"),
        "fake": data.draw(tensors(shape, dtype, low=-1.0, high=1.0), label="fake"),
        "alpha": data.draw(tensors((b,), dtype, low=0.0, high=1.0), label="alpha"),
        "column": data.draw(st.booleans(), label="critic returns [B, 1] (else [B])"),
        "seed": data.draw(st.integers(0, 2**16), label="critic_seed"),
    }


def random_direction(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return w / w.norm()


def call_penalty(student, critic, real, fake, alpha, **kwargs):
    r = student.call("gradient_penalty", critic, real, fake, alpha, return_inputs=True, **kwargs)
    expect_tensor(r.value, shape=(), dtype=real.dtype, what="gradient_penalty (a scalar: a mean over the batch)")
    expect_untouched(r, real=real, fake=fake, alpha=alpha)
    return r


def shape_note(real: torch.Tensor, column: bool) -> str:
    return f"real/fake {list(real.shape)}, critic output [B{', 1' if column else ''}]"


@checks.add("gradient_penalty", "zero for a unit-norm linear critic, whatever alpha", requires=PINS["gradient_penalty"])
@given(data=st.data())
def gp_unit_linear_is_zero(student, data):
    i = draw_penalty_inputs(data)
    bias = data.draw(st.floats(-3, 3), label="critic bias")
    real = i["real"]
    w = random_direction(tuple(real.shape[1:]), i["seed"])
    r = call_penalty(student, linear_critic(w, bias, real.dtype, i["column"]), real, i["fake"], i["alpha"])
    expect_close(r.value, torch.zeros((), dtype=real.dtype), atol=1e-6,
                 what=f"gradient_penalty of a critic with ||grad|| = 1 everywhere ({shape_note(real, i['column'])}; "
                      f"{handout('gradient_penalty')})")


@checks.add("gradient_penalty", "equals (||w|| - 1)^2 for a linear critic w.x + b, norm over all non-batch dims",
            points=2, requires=PINS["gradient_penalty"])
@given(data=st.data())
def gp_linear_closed_form(student, data):
    i = draw_penalty_inputs(data)
    norm = data.draw(st.floats(0.05, 5.0), label="||w||")
    bias = data.draw(st.floats(-3, 3), label="critic bias")
    real = i["real"]
    w = (norm * random_direction(tuple(real.shape[1:]), i["seed"])).to(real.dtype)
    r = call_penalty(student, linear_critic(w, bias, real.dtype, i["column"]), real, i["fake"], i["alpha"])
    expected = (w.double().norm() - 1) ** 2
    expect_close(r.value, expected.to(real.dtype), atol=value_tolerance(real.dtype),
                 what=f"gradient_penalty of a linear critic with ||w|| = {w.double().norm().item():.6g}, whose input "
                      f"gradient is w everywhere ({shape_note(real, i['column'])}; {handout('gradient_penalty')})")


def quadratic_setup(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scale in [0.5, 2], center at distance 2 to 4 from [-1, 1] per element: gradient norms >= 0.5."""
    gen = torch.Generator().manual_seed(seed)
    scale = 0.5 + 1.5 * torch.rand(shape, generator=gen, dtype=torch.float64)
    sign = torch.randint(0, 2, shape, generator=gen).double() * 2 - 1
    center = sign * (3 + 2 * torch.rand(shape, generator=gen, dtype=torch.float64))
    return scale, center


def penalty_critics(real: torch.Tensor, norm: float, column: bool, seed: int) -> list[tuple[str, Fixture, Fixture]]:
    """(name, critic in real's dtype, the same critic in float64): a linear critic w.x + 0.5 with ||w|| = norm
    (its penalty does not depend on the bias) and a quadratic one 0.5 sum scale (x - center)^2 (input
    gradient norms >= 0.5 on [-1, 1], inside the handout's domain)."""
    dtype = real.dtype
    w = (norm * random_direction(tuple(real.shape[1:]), seed)).to(dtype)
    scale, center = (t.to(dtype) for t in quadratic_setup(tuple(real.shape[1:]), seed + 1))
    return [("the linear critic", linear_critic(w, 0.5, dtype, column), linear_critic(w.double(), 0.5, F64, column)),
            ("the quadratic critic", quadratic_critic(scale, center, dtype, column),
             quadratic_critic(scale.double(), center.double(), F64, column))]


@checks.add("gradient_penalty", "backpropagates into the critic's parameters (create_graph=True): gradients agree "
            "with finite differences of its values (float32 with float64)", requires=PINS["gradient_penalty"])
@given(data=st.data())
def gp_parameter_gradients(student, data):
    i = draw_penalty_inputs(data)
    norm = data.draw(st.floats(0.05, 5.0), label="||w||")
    real, fake, alpha = i["real"], i["fake"], i["alpha"]

    def scalar(value, dtype):
        expect_tensor(value, shape=(), dtype=dtype, what="gradient_penalty (a scalar: a mean over the batch)")

    for name, critic, wide in penalty_critics(real, norm, i["column"], i["seed"]):
        r = own_gradients(student, "gradient_penalty", (critic, real, fake, alpha),
                          (wide, real.double(), fake.double(), alpha.double()), {"the critic": 0}, value=scalar,
                          hint=CREATE_GRAPH, what=f" for {name} ({shape_note(real, i['column'])})", unused=("bias",))
        expect_untouched(r, real=real, fake=fake, alpha=alpha)


# ---------------------------------------------------------------------- cycle_consistency_loss


def draw_cycle_inputs(data, *, same_dims: bool) -> dict:
    """x [B, ..., D_x], y [B', ..., D_y] in [-3, 3]: batch sizes and leading dims drawn apart."""
    dtype = data.draw(dtypes(), label="dtype")
    dx = data.draw(st.integers(1, 4), label="D_x")
    dy = dx if same_dims else data.draw(st.integers(1, 4), label="D_y")
    mid = st.lists(st.integers(1, 3), max_size=2)
    x_shape = (data.draw(st.integers(1, 5), label="B"), *data.draw(mid, label="leading dims of x"), dx)
    y_shape = (data.draw(st.integers(1, 5), label="B'"), *data.draw(mid, label="leading dims of y"), dy)
    return {"x": data.draw(tensors(x_shape, dtype, low=-3.0, high=3.0), label="x"),
            "y": data.draw(tensors(y_shape, dtype, low=-3.0, high=3.0), label="y"),
            "seed": data.draw(st.integers(0, 2**16), label="maps_seed")}


@checks.add("cycle_consistency_loss", "zero when F inverts G", requires=PINS["cycle_consistency_loss"])
@given(data=st.data())
def cycle_zero_for_inverses(student, data):
    i = draw_cycle_inputs(data, same_dims=True)
    x, y = i["x"], i["y"]
    g, f = invertible_pair(x.shape[-1], x.dtype, torch.Generator().manual_seed(i["seed"]))
    r = student.call("cycle_consistency_loss", x, y, g, f, return_inputs=True)
    expect_close(r.value, torch.zeros((), dtype=x.dtype), atol=1e-4 if x.dtype == torch.float32 else 1e-10,
                 what=f"cycle loss of an invertible affine G and F = G^-1 (x {list(x.shape)}, y {list(y.shape)}; "
                      f"{handout('cycle_consistency_loss')})")
    expect_untouched(r, x=x, y=y)


@checks.add("cycle_consistency_loss", "gradients with respect to G's and F's parameters agree with finite "
            "differences of its values (float32 with float64)", requires=PINS["cycle_consistency_loss"])
@given(data=st.data())
def cycle_parameter_gradients(student, data):
    """Random affine maps G: X -> Y and F: Y -> X between spaces of different dimension: the residuals are
    almost surely away from 0, where the absolute value is differentiable."""
    i = draw_cycle_inputs(data, same_dims=False)
    x, y = i["x"], i["y"]
    dx, dy = x.shape[-1], y.shape[-1]
    gen = torch.Generator().manual_seed(i["seed"])
    weights = {"G": (torch.randn(dy, dx, generator=gen, dtype=F64), torch.randn(dy, generator=gen, dtype=F64)),
               "F": (torch.randn(dx, dy, generator=gen, dtype=F64), torch.randn(dx, generator=gen, dtype=F64))}
    maps = {name: linear_map(w.to(x.dtype), b.to(x.dtype), x.dtype)[0] for name, (w, b) in weights.items()}
    wide = {name: linear_map(w.to(x.dtype), b.to(x.dtype), F64)[0] for name, (w, b) in weights.items()}

    def scalar(value, dtype):
        expect_tensor(value, shape=(), dtype=dtype, what="cycle_consistency_loss (a scalar: means over all elements)")

    r = own_gradients(student, "cycle_consistency_loss", (x, y, maps["G"], maps["F"]),
                      (x.double(), y.double(), wide["G"], wide["F"]), {"G": 2, "F": 3}, value=scalar,
                      hint=f"call G and F on the tensors, without .detach() or torch.no_grad(); {DIFFERENTIABLE}",
                      what=f" (affine maps, x {list(x.shape)}, y {list(y.shape)})")
    expect_untouched(r, x=x, y=y)
