"""hw4_gan public checks: properties that need no reference implementation.

Students run these with `dgm-grade check gan.py`. Nothing here implements a
graded function: the losses are the handout's one-line definitions, so their
values are pinned by hidden checks (checks_hidden.py) that compare with the
reference. What the public checks know instead:

* analytic derivatives: d/dl of -log sigmoid(l) is sigmoid(l) - 1, and so on;
  exact gradients on generic inputs pin a loss up to a constant, so they are
  the public value pins, and every check of a special case (the optimal
  discriminator, saturation, logits of ±100, symmetries) counts only when the
  gradients and the hidden value check pass (``requires``);
* divergences at the optimal discriminator D* = p / (p + q) on a discrete
  support (Goodfellow et al. 2014, Theorem 1: the minimax loss is
  log 4 - 2 JSD(p, q) there);
* critics whose input gradients are known (linear: w; quadratic:
  scale (x - center)), so the penalty has a closed form;
* affine maps whose cycles are translations (F(G(x)) = x + delta), so the
  cycle loss and its parameter gradients have a closed form.

Nothing here draws randomness inside the student's functions, so no check is
statistical: every expected value is exact up to the dtype's rounding.
"""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor
from grader.strategies import dtypes, tensors

from .models import (BATCHES, CREATE_GRAPH, DIFFERENTIABLE, LOG4, STABILITY, batches_with_distributions,
                     draw_distributions, draw_loss_inputs, expect_untouched, grad_tolerance, handout, invertible_pair,
                     jensen_shannon, kl, linear_critic, quadratic_critic, translation_pair, value_tolerance)

checks = Checks()

# The checks pinning each function's value on generic inputs: the public exact-gradient check and the hidden
# comparison with the reference. Checks of special cases and symmetries require both.
PINS = {
    "d_loss_minimax": ("d_minimax_gradients", "d_minimax_values"),
    "g_loss_minimax": ("g_minimax_gradients", "g_minimax_values"),
    "g_loss_nonsaturating": ("g_ns_gradients", "g_ns_values"),
    "d_loss_lsgan": ("d_lsgan_gradients", "d_lsgan_values"),
    "g_loss_lsgan": ("g_lsgan_gradients", "g_lsgan_values"),
    "d_loss_wgan": ("d_wgan_gradients", "d_wgan_values"),
    "g_loss_wgan": ("g_wgan_gradients", "g_wgan_values"),
    "gradient_penalty": ("gp_quadratic_closed_form", "gp_mlp_reference"),
    "cycle_consistency_loss": ("cycle_translation_closed_form", "cycle_affine_reference", "cycle_mlp_reference"),
}


# ---------------------------------------------------------------------- the losses' derivatives

# Derivative of each argument's summand (the gradient is this / the argument's numel), with the formula for
# messages. These follow from the handout's definitions by d/dl log sigmoid(l) = 1 - sigmoid(l).
DERIVATIVES = {
    "d_loss_minimax": [(lambda r: torch.sigmoid(r) - 1, "real_logits", "sigmoid(real_logits) - 1"),
                       (lambda f: torch.sigmoid(f), "fake_logits", "sigmoid(fake_logits)")],
    "g_loss_minimax": [(lambda f: -torch.sigmoid(f), "fake_logits", "-sigmoid(fake_logits)")],
    "g_loss_nonsaturating": [(lambda f: torch.sigmoid(f) - 1, "fake_logits", "sigmoid(fake_logits) - 1")],
    "d_loss_lsgan": [(lambda r: r - 1, "real_out", "real_out - 1"), (lambda f: f, "fake_out", "fake_out")],
    "g_loss_lsgan": [(lambda f: f - 1, "fake_out", "fake_out - 1")],
    "d_loss_wgan": [(lambda r: -torch.ones_like(r), "real_out", "-1"), (lambda f: torch.ones_like(f), "fake_out", "1")],
    "g_loss_wgan": [(lambda f: -torch.ones_like(f), "fake_out", "-1")],
}


def check_gradients(student, fn: str, inputs: dict[str, torch.Tensor], *, atol: float | None = None,
                    where: str = "") -> None:
    """A scalar in the inputs' dtype, inputs untouched, and d loss / d input_i = derivative_i / numel(input_i)."""
    tensors_in = tuple(inputs.values())
    dtype = tensors_in[0].dtype
    r = student.call(fn, *tensors_in, wrt=tensors_in, return_inputs=True)
    note = STABILITY if fn in LOGIT_LOSSES else BATCHES
    expect_tensor(r.value, shape=(), dtype=dtype, what=f"{fn}{where} (a scalar in the inputs' dtype; {note})")
    expect_untouched(r, **inputs)
    for t, (derivative, name, formula) in zip(tensors_in, DERIVATIVES[fn]):
        g = r.grad(t)
        expect(g is not None, f"no gradient reached {name}: build the loss from torch operations on it "
                              f"({DIFFERENTIABLE})")
        expected = derivative(t.double()) / t.numel()
        expect_close(g, expected.to(dtype), atol=grad_tolerance(dtype) if atol is None else atol,
                     what=f"d {fn} / d {name}{where} (= ({formula}) / number of elements, from {handout(fn)})")


def add_gradient_check(fn: str, check_id: str, formula: str) -> None:
    """The public value pin of a loss: exact gradients on generic inputs (they fix it up to a constant)."""

    def body(student, data):
        check_gradients(student, fn, draw_loss_inputs(data, fn))

    body.__name__ = body.__qualname__ = check_id  # the check's id
    checks.add(fn, f"exact gradients on generic inputs: {formula}")(given(data=st.data())(body))


LOGIT_LOSSES = ("d_loss_minimax", "g_loss_minimax", "g_loss_nonsaturating")
EXTREME_LOGITS = [-100.0, -40.0, -10.0, -1.0, 0.0, 1.0, 10.0, 40.0, 100.0]


def add_extremes_check(fn: str, check_id: str) -> None:
    """Finite values and exact gradients on a batch of logits from -100 to 100 (every argument), float32 and 64."""

    def body(student):
        for dtype in (torch.float32, torch.float64):
            name = str(dtype).removeprefix("torch.")
            inputs = {arg: torch.tensor(EXTREME_LOGITS, dtype=dtype) for _, arg, _ in DERIVATIVES[fn]}
            check_gradients(student, fn, inputs, atol=1e-6, where=f" on logits {EXTREME_LOGITS} in {name}")

    body.__name__ = body.__qualname__ = check_id  # the check's id
    checks.add(fn, "finite value and exact gradients at logits from -100 to 100 in float32 and float64",
               requires=PINS[fn])(body)


# ---------------------------------------------------------------------- d_loss_minimax

add_gradient_check("d_loss_minimax", "d_minimax_gradients",
                   "(sigmoid(l) - 1) / B for real_logits, sigmoid(l) / B' for fake_logits")
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


@checks.add("d_loss_minimax", "is minimised by D* = p / (p + q): zero gradient per support point, larger elsewhere",
            requires=PINS["d_loss_minimax"])
@given(data=st.data())
def d_minimax_optimum(student, data):
    counts_p, counts_q, seed = draw_distributions(data)
    gen = torch.Generator().manual_seed(seed)
    _, _, real_index, fake_index, logits, _ = batches_with_distributions(counts_p, counts_q, gen)
    real, fake = logits[real_index], logits[fake_index]
    r = student.call("d_loss_minimax", real, fake, wrt=(real, fake))
    at_optimum = expect_tensor(r.value, shape=(), dtype=torch.float64, what="d_loss_minimax at D*")
    g_real, g_fake = r.grad(real), r.grad(fake)
    expect(g_real is not None and g_fake is not None, f"no gradient reached the logits ({DIFFERENTIABLE})")
    g_real = expect_tensor(g_real, shape=real.shape, what="d loss / d real_logits")
    g_fake = expect_tensor(g_fake, shape=fake.shape, what="d loss / d fake_logits")
    k = len(counts_p)
    per_point = torch.zeros(k, dtype=torch.float64).index_add(0, real_index, g_real).index_add(0, fake_index, g_fake)
    expect_close(per_point, torch.zeros(k, dtype=torch.float64), atol=1e-12,
                 what=f"d loss / d logit of each support point at D* (D* = p / (p + q) minimises "
                      f"{handout('d_loss_minimax')}, so the loss is stationary there)")
    delta = 0.5 * torch.randn(k, generator=gen, dtype=torch.float64)
    moved = expect_tensor(student.d_loss_minimax(real + delta[real_index], fake + delta[fake_index]), shape=(),
                          what="d_loss_minimax away from D*")
    expect(moved.item() >= at_optimum.item() - 1e-12,
           f"moving the logits away from D* lowered the loss from {at_optimum.item():.10g} to {moved.item():.10g}; "
           f"D* = p / (p + q) must minimise {handout('d_loss_minimax')}")


# ---------------------------------------------------------------------- g_loss_minimax


def batch_gradient(student, fn: str, fake: torch.Tensor) -> torch.Tensor:
    """batch size * d fn(fake) / d fake [B] or [B, 1], in float64 (the per-example gradient of a batch mean)."""
    g = student.call(fn, fake, wrt=(fake,)).grad(fake)
    expect(g is not None, f"no gradient reached fake_logits ({DIFFERENTIABLE})")
    return expect_tensor(g, shape=fake.shape, dtype=fake.dtype, what="d loss / d fake_logits").double() * fake.numel()


add_gradient_check("g_loss_minimax", "g_minimax_gradients", "-sigmoid(l) / B")
add_extremes_check("g_loss_minimax", "g_minimax_extremes")


@checks.add("g_loss_minimax", "saturates: its gradient vanishes where D(G(z)) is near 0",
            requires=PINS["g_loss_minimax"])
@given(data=st.data())
def g_minimax_saturates(student, data):
    """sigmoid(-8) = 3.4e-4, so |d loss / d l| * B <= 3.4e-4 here (the reason for the non-saturating loss)."""
    fake = draw_loss_inputs(data, "g_loss_minimax", low=-30.0, high=-8.0)["fake_logits"]
    scaled = batch_gradient(student, "g_loss_minimax", fake)
    expect(bool((scaled <= 0).all()) and bool((scaled.abs() <= 1e-3).all()),
           f"where D(G(z)) = sigmoid(l) is near 0 (l in [-30, -8]), d/dl of log(1 - D) = -sigmoid(l) is almost 0 "
           f"({handout('g_loss_minimax')}); got batch size * gradient = {scaled.flatten().tolist()[:8]}")


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

add_gradient_check("g_loss_nonsaturating", "g_ns_gradients", "(sigmoid(l) - 1) / B")
add_extremes_check("g_loss_nonsaturating", "g_ns_extremes")


@checks.add("g_loss_nonsaturating", "does not saturate: its gradient stays near -1 / B where D(G(z)) is near 0",
            requires=PINS["g_loss_nonsaturating"])
@given(data=st.data())
def g_ns_does_not_saturate(student, data):
    fake = draw_loss_inputs(data, "g_loss_nonsaturating", low=-30.0, high=-8.0)["fake_logits"]
    scaled = batch_gradient(student, "g_loss_nonsaturating", fake)
    expect(bool(((scaled + 1).abs() <= 1e-3).all()),
           f"where D(G(z)) = sigmoid(l) is near 0 (l in [-30, -8]), d/dl of -log D = sigmoid(l) - 1 is about -1 "
           f"({handout('g_loss_nonsaturating')}); got batch size * gradient = {scaled.flatten().tolist()[:8]}")


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

add_gradient_check("d_loss_lsgan", "d_lsgan_gradients", "(D(x) - 1) / B for real_out, D(G(z)) / B' for fake_out")


@checks.add("d_loss_lsgan", "at D* = p / (p + q) is stationary and equals 0.5 sum_k p_k q_k / (p_k + q_k)",
            requires=PINS["d_loss_lsgan"])
@given(data=st.data())
def d_lsgan_optimum(student, data):
    """Mao et al. (2017), eq. 4 with a = 0, b = 1: D* = p / (p + q); the minimum value follows by substitution."""
    counts_p, counts_q, seed = draw_distributions(data)
    dtype = data.draw(dtypes(), label="dtype")
    p, q, real_index, fake_index, _, d_star = optimal_batches(counts_p, counts_q, seed)
    real, fake = d_star[real_index].to(dtype), d_star[fake_index].to(dtype)
    r = student.call("d_loss_lsgan", real, fake, wrt=(real, fake))
    expect_close(r.value, (0.5 * (p * q / (p + q)).sum()).to(dtype), atol=value_tolerance(dtype),
                 what=f"d_loss_lsgan at D* for p = {rounded(p)}, q = {rounded(q)} ({handout('d_loss_lsgan')} "
                      "with D = D* = p / (p + q))")
    g_real, g_fake = r.grad(real), r.grad(fake)
    expect(g_real is not None and g_fake is not None, f"no gradient reached the critic outputs ({DIFFERENTIABLE})")
    k = len(counts_p)
    per_point = (torch.zeros(k, dtype=torch.float64).index_add(0, real_index, g_real.double())
                 .index_add(0, fake_index, g_fake.double()))
    expect_close(per_point, torch.zeros(k, dtype=torch.float64), atol=10 * grad_tolerance(dtype),
                 what="d loss / d D of each support point at D* (D* minimises the loss, so it is stationary there)")


add_gradient_check("g_loss_lsgan", "g_lsgan_gradients", "(D(G(z)) - 1) / B")


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

add_gradient_check("d_loss_wgan", "d_wgan_gradients", "-1 / B for real_out, 1 / B' for fake_out")


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


add_gradient_check("g_loss_wgan", "g_wgan_gradients", "-1 / B")


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


def quadratic_critic_penalty(scale, center, real, fake, alpha) -> torch.Tensor:
    """The penalty of c(x) = 0.5 sum scale (x - center)^2, whose input gradient is scale (x - center)."""
    a = alpha.reshape(-1, *([1] * (real.dim() - 1)))
    x_hat = a * real + (1 - a) * fake
    norms = (scale * (x_hat - center)).flatten(1).norm(dim=1)
    return ((norms - 1) ** 2).mean()


def quadratic_setup(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scale in [0.5, 2], center at distance 2 to 4 from [-1, 1] per element: gradient norms >= 0.5."""
    gen = torch.Generator().manual_seed(seed)
    scale = 0.5 + 1.5 * torch.rand(shape, generator=gen, dtype=torch.float64)
    sign = torch.randint(0, 2, shape, generator=gen).double() * 2 - 1
    center = sign * (3 + 2 * torch.rand(shape, generator=gen, dtype=torch.float64))
    return scale, center


@checks.add("gradient_penalty", "interpolates x_hat = alpha real + (1 - alpha) fake per example (quadratic critic)",
            points=2)
@given(data=st.data())
def gp_quadratic_closed_form(student, data):
    i = draw_penalty_inputs(data)
    real, fake, alpha = i["real"], i["fake"], i["alpha"]
    scale, center = quadratic_setup(tuple(real.shape[1:]), i["seed"])
    critic = quadratic_critic(scale, center, real.dtype, i["column"])
    r = call_penalty(student, critic, real, fake, alpha)
    expected = quadratic_critic_penalty(scale.to(real.dtype).double(), center.to(real.dtype).double(), real.double(),
                                        fake.double(), alpha.double())
    expect_close(r.value, expected.to(real.dtype), atol=value_tolerance(real.dtype),
                 what=f"gradient_penalty of c(x) = 0.5 sum scale (x - center)^2, whose gradient at x_hat is "
                      f"scale (x_hat - center) ({shape_note(real, i['column'])}; {handout('gradient_penalty')})")


@checks.add("gradient_penalty", "backpropagates into the critic's parameters (create_graph=True)", points=2)
@given(data=st.data())
def gp_parameter_gradients(student, data):
    i = draw_penalty_inputs(data)
    norm = data.draw(st.floats(0.05, 5.0), label="||w||")
    real, fake, alpha, column, seed = i["real"], i["fake"], i["alpha"], i["column"], i["seed"]
    dtype = real.dtype
    # linear critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||; the bias does not matter
    w = (norm * random_direction(tuple(real.shape[1:]), seed)).to(dtype)
    critic = linear_critic(w, 0.5, dtype, column)
    r = student.call("gradient_penalty", critic, real, fake, alpha, wrt=(critic,))
    expect_tensor(r.value, shape=(), dtype=dtype, what="gradient_penalty")
    grads = r.grad(critic) or {}
    expect(grads.get("weight") is not None, f"no gradient reached the critic's weights ({CREATE_GRAPH})")
    wd = w.double()
    expected = 2 * (wd.norm() - 1) * wd / wd.norm()
    expect_close(grads["weight"], expected.to(dtype), atol=grad_tolerance(dtype),
                 what=f"d penalty / d w of a linear critic (= 2 (||w|| - 1) w / ||w||, ||w|| = {wd.norm().item():.6g}; "
                      f"{CREATE_GRAPH})")
    if grads.get("bias") is not None:
        expect_close(grads["bias"], torch.zeros((), dtype=dtype), atol=grad_tolerance(dtype),
                     what="d penalty / d bias of a linear critic (the bias does not change the input gradient)")
    # quadratic critic: the closed form differentiated here
    scale, center = quadratic_setup(tuple(real.shape[1:]), seed + 1)
    critic = quadratic_critic(scale, center, dtype, column)
    r = student.call("gradient_penalty", critic, real, fake, alpha, wrt=(critic,))
    grads = r.grad(critic) or {}
    s = scale.to(dtype).double().requires_grad_(True)
    c = center.to(dtype).double().requires_grad_(True)
    d_scale, d_center = torch.autograd.grad(
        quadratic_critic_penalty(s, c, real.double(), fake.double(), alpha.double()), (s, c))
    for name, expected in (("scale", d_scale), ("center", d_center)):
        expect(grads.get(name) is not None, f"no gradient reached the critic's {name} parameter ({CREATE_GRAPH})")
        expect_close(grads[name], expected.to(dtype), atol=1e-5 if dtype == torch.float32 else 1e-10,
                     what=f"d penalty / d {name} of c(x) = 0.5 sum scale (x - center)^2 ({CREATE_GRAPH})")


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


def translation_gradients(maps: dict, x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Parameter gradients of the cycle loss where F(G(x)) - x = delta and G(F(y)) - y = epsilon are constant.

    With r_x = A (W x + b) + c - x and r_y = W (A y + c) + b - y, d |r| / d r = sign(r) is constant, so each
    gradient is sign(residual) times the mean input of the layer (x-cycle: mean over the rows of x, divided
    by the D elements of a row; y-cycle likewise).
    """
    w, a, b, c = maps["W"], maps["A"], maps["b"], maps["c"]
    d = w.shape[0]
    sx, sy = maps["delta"].sign(), maps["epsilon"].sign()
    x_rows, y_rows = x.double().reshape(-1, d), y.double().reshape(-1, d)
    gx_mean = (x_rows @ w.T + b).mean(0)  # mean of G(x) over the rows
    fy_mean = (y_rows @ a.T + c).mean(0)  # mean of F(y)
    return {
        "G": {"weight": (torch.outer(a.T @ sx, x_rows.mean(0)) + torch.outer(sy, fy_mean)) / d,
              "bias": (a.T @ sx + sy) / d},
        "F": {"weight": (torch.outer(sx, gx_mean) + torch.outer(w.T @ sy, y_rows.mean(0))) / d,
              "bias": (sx + w.T @ sy) / d},
    }


@checks.add("cycle_consistency_loss", "equals mean |delta| + mean |W delta| and has the exact parameter gradients "
                                      "when F(G(x)) = x + delta and G(F(y)) = y + W delta", points=2)
@given(data=st.data())
def cycle_translation_closed_form(student, data):
    """Affine G(x) = W x + b and F(y) = W^-1 y + c: both cycles are translations, so every element of
    |F(G(x)) - x| is |delta_i| for its coordinate i (and |(W delta)_i| for y), whatever x and y are."""
    i = draw_cycle_inputs(data, same_dims=True)
    x, y = i["x"], i["y"]
    maps = translation_pair(x.shape[-1], x.dtype, torch.Generator().manual_seed(i["seed"]))
    r = student.call("cycle_consistency_loss", x, y, maps["G"], maps["F"], wrt=(maps["G"], maps["F"]),
                     return_inputs=True)
    expected = maps["delta"].abs().mean() + maps["epsilon"].abs().mean()
    expect_close(r.value, expected.to(x.dtype), atol=value_tolerance(x.dtype),
                 what=f"cycle loss where F(G(x)) - x = delta = {rounded(maps['delta'])} and G(F(y)) - y = W delta = "
                      f"{rounded(maps['epsilon'])} for every row (x {list(x.shape)}, y {list(y.shape)}; "
                      f"{handout('cycle_consistency_loss')})")
    expect_untouched(r, x=x, y=y)
    for name, expected_grads in translation_gradients(maps, x, y).items():
        grads = r.grad(maps[name]) or {}
        for param, g_expected in expected_grads.items():
            expect(grads.get(param) is not None, f"no gradient reached {name}'s {param}: call {name} on the tensors, "
                                                 f"without .detach() or torch.no_grad() ({DIFFERENTIABLE})")
            expect_close(grads[param], g_expected.to(x.dtype), atol=1e-5 if x.dtype == torch.float32 else 1e-10,
                         what=f"d loss / d {name}.{param} (sign of each residual times the mean input of {name}, "
                              f"from {handout('cycle_consistency_loss')})")
