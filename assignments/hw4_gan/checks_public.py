"""hw4_gan public checks: properties that need no reference implementation.

Students run these with `dgm-grade check gan.py`. Expected values come from
the handout's formulas evaluated stably in float64 here in the judge, from
analytic derivatives, and from closed forms the checks derive themselves: the
optimal discriminator D* = p / (p + q) on a discrete support (where the
minimax loss is log 4 - 2 JSD(p, q)), linear and quadratic critics whose input
gradients are known, and affine maps for the cycle loss.

Nothing here draws randomness inside the student's functions, so no check is
statistical: every expected value is exact up to the dtype's rounding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor, expect_unchanged
from grader.strategies import dtypes, tensors

from .models import (LOG4, batches_with_distributions, invertible_pair, jensen_shannon, linear_critic, linear_map,
                     quadratic_critic)

checks = Checks()


def value_tolerance(dtype: torch.dtype) -> float:
    """Absolute slack: float32 loses ~1e-7 relative on terms as large as 100."""
    return 1e-4 if dtype == torch.float32 else 1e-9


def grad_tolerance(dtype: torch.dtype) -> float:
    return 1e-6 if dtype == torch.float32 else 1e-12


# ---------------------------------------------------------------------- the losses, by definition

# The handout's formulas, evaluated stably in float64 (log D = logsigmoid(l), log(1 - D) = logsigmoid(-l)).
DEFINITIONS = {
    "d_loss_minimax": lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean(),
    "g_loss_minimax": lambda f: F.logsigmoid(-f).mean(),
    "g_loss_nonsaturating": lambda f: -F.logsigmoid(f).mean(),
    "d_loss_lsgan": lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean(),
    "g_loss_lsgan": lambda f: 0.5 * ((f - 1) ** 2).mean(),
    "d_loss_wgan": lambda r, f: f.mean() - r.mean(),
    "g_loss_wgan": lambda f: -f.mean(),
}

# Analytic derivative of each argument's summand (the gradient is this / the argument's numel),
# with the formula for messages.
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


@st.composite
def batches(draw, n_args: int, low: float = -100.0, high: float = 100.0, dtype=dtypes()):
    """``n_args`` batches of logits / critic outputs, each [B_i] or (all of them) [B_i, 1], sizes drawn apart."""
    dtype, keepdim = draw(dtype), draw(st.booleans())
    sizes = [draw(st.integers(1, 8)) for _ in range(n_args)]
    return tuple(draw(tensors((b, 1) if keepdim else (b,), dtype, low=low, high=high)) for b in sizes)


def check_values(student, fn: str, inputs: tuple[torch.Tensor, ...]) -> None:
    """The student's loss is a scalar equal to the definition, in the inputs' dtype, inputs untouched."""
    dtype = inputs[0].dtype
    r = student.call(fn, *inputs, return_inputs=True)
    expected = DEFINITIONS[fn](*(t.double() for t in inputs))
    expect_close(r.value, expected.to(dtype), what=f"{fn} (a scalar: a mean over the batch)",
                 atol=value_tolerance(dtype))
    expect_unchanged(r, *inputs)


def check_gradients(student, fn: str, inputs: tuple[torch.Tensor, ...]) -> None:
    """d loss / d input_i = derivative_i(input_i) / numel(input_i), for every argument."""
    dtype = inputs[0].dtype
    r = student.call(fn, *inputs, wrt=inputs)
    expect_tensor(r.value, shape=(), dtype=dtype, what=fn)
    for t, (derivative, name, formula) in zip(inputs, DERIVATIVES[fn]):
        g = r.grad(t)
        expect(g is not None, f"no gradient reached {name}: build the loss from torch operations on it "
                              "(no .item(), .detach() or numpy)")
        expected = derivative(t.double()) / t.numel()
        expect_close(g, expected.to(dtype), what=f"d {fn} / d {name} (= ({formula}) / batch size)",
                     atol=grad_tolerance(dtype))


EXTREME_LOGITS = [-100.0, -40.0, -10.0, -1.0, 0.0, 1.0, 10.0, 40.0, 100.0]


def check_extremes(student, fn: str, n_args: int) -> None:
    """Values and gradients on a batch of logits from -100 to 100 (every argument), in float32 and float64."""
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).removeprefix("torch.")
        inputs = tuple(torch.tensor(EXTREME_LOGITS, dtype=dtype) for _ in range(n_args))
        r = student.call(fn, *inputs, wrt=inputs)
        expected = DEFINITIONS[fn](*(t.double() for t in inputs))
        expect_close(r.value, expected.to(dtype), atol=1e-4,
                     what=f"{fn} on logits {EXTREME_LOGITS} in {name} "
                          "(use F.logsigmoid(l) for log D and F.logsigmoid(-l) for log(1 - D))")
        for t, (derivative, arg, formula) in zip(inputs, DERIVATIVES[fn]):
            g = r.grad(t)
            expect(g is not None, f"no gradient reached {arg}")
            expect_close(g, (derivative(t.double()) / t.numel()).to(dtype), atol=1e-6,
                         what=f"d {fn} / d {arg} on logits {EXTREME_LOGITS} in {name} (= ({formula}) / batch size)")


# ---------------------------------------------------------------------- d_loss_minimax


@checks.add("d_loss_minimax", "equals -mean log D(x) - mean log(1 - D(G(z))) for logits up to |100|", points=2)
@given(inputs=batches(2))
def d_minimax_values(student, inputs):
    check_values(student, "d_loss_minimax", inputs)


@checks.add("d_loss_minimax", "exact gradients: (sigmoid(l) - 1) / B for real, sigmoid(l) / B' for fake")
@given(inputs=batches(2))
def d_minimax_gradients(student, inputs):
    check_gradients(student, "d_loss_minimax", inputs)


@checks.add("d_loss_minimax", "finite values and gradients at logits of ±100 in float32 and float64")
def d_minimax_extremes(student):
    check_extremes(student, "d_loss_minimax", 2)


@st.composite
def discrete_pairs(draw):
    """(counts_p, counts_q, shuffle seed): two distributions over K support points, every point in both."""
    k = draw(st.integers(2, 5))
    counts = st.lists(st.integers(1, 6), min_size=k, max_size=k)
    return draw(counts), draw(counts), draw(st.integers(0, 2**16))


@checks.add("d_loss_minimax", "equals log 4 - 2 JSD(p, q) at the optimal discriminator D* = p / (p + q)", points=2)
@given(pair=discrete_pairs(), dtype=dtypes(), keepdim=st.booleans())
def d_minimax_jsd(student, pair, dtype, keepdim):
    """Goodfellow et al. (2014), Theorem 1: C(G) = -log 4 + 2 JSD. The real batch holds support point k
    counts_p[k] times and the fake batch counts_q[k] times, so batch means are exact expectations under p and q."""
    counts_p, counts_q, seed = pair
    p, q, real_index, fake_index, logits, _ = batches_with_distributions(counts_p, counts_q,
                                                                         torch.Generator().manual_seed(seed))
    real, fake = logits[real_index], logits[fake_index]
    if keepdim:
        real, fake = real[:, None], fake[:, None]
    got = student.d_loss_minimax(real.to(dtype), fake.to(dtype))
    expected = LOG4 - 2 * jensen_shannon(p, q)
    expect_close(got, torch.tensor(expected, dtype=dtype),
                 what=f"d_loss_minimax at D* for p = {[round(v, 4) for v in p.tolist()]}, "
                      f"q = {[round(v, 4) for v in q.tolist()]} (log 4 - 2 JSD = {expected:.6g})")


@checks.add("d_loss_minimax", "is minimised by D* = p / (p + q): zero gradient per support point, larger elsewhere")
@given(pair=discrete_pairs())
def d_minimax_optimum(student, pair):
    counts_p, counts_q, seed = pair
    gen = torch.Generator().manual_seed(seed)
    _, _, real_index, fake_index, logits, _ = batches_with_distributions(counts_p, counts_q, gen)
    real, fake = logits[real_index], logits[fake_index]
    r = student.call("d_loss_minimax", real, fake, wrt=(real, fake))
    at_optimum = expect_tensor(r.value, shape=(), dtype=torch.float64, what="d_loss_minimax at D*")
    g_real, g_fake = r.grad(real), r.grad(fake)
    expect(g_real is not None and g_fake is not None, "no gradient reached the logits")
    g_real = expect_tensor(g_real, shape=real.shape, what="d loss / d real_logits")
    g_fake = expect_tensor(g_fake, shape=fake.shape, what="d loss / d fake_logits")
    k = len(counts_p)
    per_point = torch.zeros(k, dtype=torch.float64).index_add(0, real_index, g_real).index_add(0, fake_index, g_fake)
    expect_close(per_point, torch.zeros(k, dtype=torch.float64), atol=1e-12,
                 what="d loss / d logit of each support point at D* (the loss is stationary at the optimum)")
    delta = 0.5 * torch.randn(k, generator=gen, dtype=torch.float64)
    moved = expect_tensor(student.d_loss_minimax(real + delta[real_index], fake + delta[fake_index]), shape=(),
                          what="d_loss_minimax away from D*")
    expect(moved.item() >= at_optimum.item() - 1e-12,
           f"moving the logits away from D* lowered the loss from {at_optimum.item():.10g} to {moved.item():.10g}; "
           "D* = p / (p + q) must minimise it")


# ---------------------------------------------------------------------- g_loss_minimax


@checks.add("g_loss_minimax", "equals mean log(1 - D(G(z))) for logits up to |100|", points=2)
@given(inputs=batches(1))
def g_minimax_values(student, inputs):
    check_values(student, "g_loss_minimax", inputs)


@checks.add("g_loss_minimax", "exact gradients: -sigmoid(l) / B")
@given(inputs=batches(1))
def g_minimax_gradients(student, inputs):
    check_gradients(student, "g_loss_minimax", inputs)


@checks.add("g_loss_minimax", "finite values and gradients at logits of ±100 in float32 and float64")
def g_minimax_extremes(student):
    check_extremes(student, "g_loss_minimax", 1)


@checks.add("g_loss_minimax", "saturates: its gradient vanishes where D(G(z)) is near 0")
@given(inputs=batches(1, low=-30.0, high=-8.0))
def g_minimax_saturates(student, inputs):
    """sigmoid(-8) = 3.4e-4, so |d loss / d l| * B <= 3.4e-4 here (the reason for the non-saturating loss)."""
    (fake,) = inputs
    r = student.call("g_loss_minimax", fake, wrt=(fake,))
    g = r.grad(fake)
    expect(g is not None, "no gradient reached fake_logits")
    scaled = expect_tensor(g, shape=fake.shape, dtype=fake.dtype, what="d loss / d fake_logits").double() * fake.numel()
    expect(bool((scaled <= 0).all()) and bool((scaled.abs() <= 1e-3).all()),
           f"where D(G(z)) = sigmoid(l) is near 0 (l in [-30, -8]), d/dl of log(1 - D) = -sigmoid(l) is almost 0; "
           f"got batch size * gradient = {scaled.flatten().tolist()[:8]}")


# ---------------------------------------------------------------------- g_loss_nonsaturating


@checks.add("g_loss_nonsaturating", "equals -mean log D(G(z)) for logits up to |100|", points=2)
@given(inputs=batches(1))
def g_ns_values(student, inputs):
    check_values(student, "g_loss_nonsaturating", inputs)


@checks.add("g_loss_nonsaturating", "exact gradients: (sigmoid(l) - 1) / B")
@given(inputs=batches(1))
def g_ns_gradients(student, inputs):
    check_gradients(student, "g_loss_nonsaturating", inputs)


@checks.add("g_loss_nonsaturating", "finite values and gradients at logits of ±100 in float32 and float64")
def g_ns_extremes(student):
    check_extremes(student, "g_loss_nonsaturating", 1)


@checks.add("g_loss_nonsaturating", "does not saturate: its gradient stays near -1 / B where D(G(z)) is near 0")
@given(inputs=batches(1, low=-30.0, high=-8.0))
def g_ns_does_not_saturate(student, inputs):
    (fake,) = inputs
    r = student.call("g_loss_nonsaturating", fake, wrt=(fake,))
    g = r.grad(fake)
    expect(g is not None, "no gradient reached fake_logits")
    scaled = expect_tensor(g, shape=fake.shape, dtype=fake.dtype, what="d loss / d fake_logits").double() * fake.numel()
    expect(bool(((scaled + 1).abs() <= 1e-3).all()),
           f"where D(G(z)) = sigmoid(l) is near 0 (l in [-30, -8]), d/dl of -log D = sigmoid(l) - 1 is about -1; "
           f"got batch size * gradient = {scaled.flatten().tolist()[:8]}")


# ---------------------------------------------------------------------- LSGAN


@checks.add("d_loss_lsgan", "equals 0.5 mean (D(x) - 1)^2 + 0.5 mean D(G(z))^2")
@given(inputs=batches(2))
def d_lsgan_values(student, inputs):
    check_values(student, "d_loss_lsgan", inputs)


@checks.add("d_loss_lsgan", "exact gradients: (D(x) - 1) / B for real, D(G(z)) / B' for fake")
@given(inputs=batches(2))
def d_lsgan_gradients(student, inputs):
    check_gradients(student, "d_loss_lsgan", inputs)


@checks.add("d_loss_lsgan", "at D* = p / (p + q) is stationary and equals 0.5 sum_k p_k q_k / (p_k + q_k)")
@given(pair=discrete_pairs(), dtype=dtypes())
def d_lsgan_optimum(student, pair, dtype):
    """Mao et al. (2017), eq. 4 with a = 0, b = 1: D* = p / (p + q); the minimum value follows by substitution."""
    counts_p, counts_q, seed = pair
    p, q, real_index, fake_index, _, d_star = batches_with_distributions(counts_p, counts_q,
                                                                         torch.Generator().manual_seed(seed))
    real, fake = d_star[real_index].to(dtype), d_star[fake_index].to(dtype)
    r = student.call("d_loss_lsgan", real, fake, wrt=(real, fake))
    expect_close(r.value, (0.5 * (p * q / (p + q)).sum()).to(dtype), what="d_loss_lsgan at D*",
                 atol=value_tolerance(dtype))
    g_real, g_fake = r.grad(real), r.grad(fake)
    expect(g_real is not None and g_fake is not None, "no gradient reached the critic outputs")
    k = len(counts_p)
    per_point = (torch.zeros(k, dtype=torch.float64).index_add(0, real_index, g_real.double())
                 .index_add(0, fake_index, g_fake.double()))
    expect_close(per_point, torch.zeros(k, dtype=torch.float64), atol=10 * grad_tolerance(dtype),
                 what="d loss / d D of each support point at D* (the loss is stationary at the optimum)")


@checks.add("g_loss_lsgan", "equals 0.5 mean (D(G(z)) - 1)^2")
@given(inputs=batches(1))
def g_lsgan_values(student, inputs):
    check_values(student, "g_loss_lsgan", inputs)


@checks.add("g_loss_lsgan", "exact gradients: (D(G(z)) - 1) / B")
@given(inputs=batches(1))
def g_lsgan_gradients(student, inputs):
    check_gradients(student, "g_loss_lsgan", inputs)


# ---------------------------------------------------------------------- WGAN


@checks.add("d_loss_wgan", "equals mean D(G(z)) - mean D(x)")
@given(inputs=batches(2))
def d_wgan_values(student, inputs):
    check_values(student, "d_loss_wgan", inputs)


@checks.add("d_loss_wgan", "exact gradients: -1 / B for real, 1 / B' for fake")
@given(inputs=batches(2))
def d_wgan_gradients(student, inputs):
    check_gradients(student, "d_loss_wgan", inputs)


@checks.add("g_loss_wgan", "equals -mean D(G(z))")
@given(inputs=batches(1))
def g_wgan_values(student, inputs):
    check_values(student, "g_loss_wgan", inputs)


@checks.add("g_loss_wgan", "exact gradients: -1 / B")
@given(inputs=batches(1))
def g_wgan_gradients(student, inputs):
    check_gradients(student, "g_loss_wgan", inputs)


# ---------------------------------------------------------------------- gradient_penalty


@st.composite
def penalty_inputs(draw, dtype=dtypes()):
    """(real, fake, alpha, keepdim, seed): vectors [B, D] or images [B, C, H, W], data in [-1, 1].

    The last dim sometimes equals B, so alpha broadcast against the last dim instead of the batch is caught.
    """
    dtype, b = draw(dtype), draw(st.integers(1, 5))
    last = draw(st.one_of(st.just(b), st.integers(1, 6)))
    image = draw(st.booleans())
    shape = (b, draw(st.integers(1, 3)), draw(st.integers(1, 3)), min(last, 4)) if image else (b, last)
    real = draw(tensors(shape, dtype, low=-1.0, high=1.0))
    fake = draw(tensors(shape, dtype, low=-1.0, high=1.0))
    alpha = draw(tensors((b,), dtype, low=0.0, high=1.0))
    return real, fake, alpha, draw(st.booleans()), draw(st.integers(0, 2**16))


def random_direction(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return w / w.norm()


def call_penalty(student, critic, real, fake, alpha, **kwargs):
    r = student.call("gradient_penalty", critic, real, fake, alpha, return_inputs=True, **kwargs)
    expect_tensor(r.value, shape=(), dtype=real.dtype, what="gradient_penalty (a scalar: a mean over the batch)")
    expect_unchanged(r, real, fake, alpha)
    return r


def shape_note(real: torch.Tensor, keepdim: bool) -> str:
    return f"real/fake {list(real.shape)}, critic output [B{', 1' if keepdim else ''}]"


@checks.add("gradient_penalty", "zero for a unit-norm linear critic, whatever alpha")
@given(inputs=penalty_inputs(), bias=st.floats(-3, 3))
def gp_unit_linear_is_zero(student, inputs, bias):
    real, fake, alpha, keepdim, seed = inputs
    w = random_direction(tuple(real.shape[1:]), seed)
    r = call_penalty(student, linear_critic(w, bias, real.dtype, keepdim), real, fake, alpha)
    expect_close(r.value, torch.zeros((), dtype=real.dtype), atol=1e-6,
                 what=f"gradient_penalty of a critic with ||grad|| = 1 everywhere ({shape_note(real, keepdim)})")


@checks.add("gradient_penalty", "equals (||w|| - 1)^2 for a linear critic w.x + b, norm over all non-batch dims",
            points=2)
@given(inputs=penalty_inputs(), norm=st.floats(0.05, 5.0), bias=st.floats(-3, 3))
def gp_linear_closed_form(student, inputs, norm, bias):
    real, fake, alpha, keepdim, seed = inputs
    w = (norm * random_direction(tuple(real.shape[1:]), seed)).to(real.dtype)
    r = call_penalty(student, linear_critic(w, bias, real.dtype, keepdim), real, fake, alpha)
    expected = (w.double().norm() - 1) ** 2
    expect_close(r.value, expected.to(real.dtype), atol=value_tolerance(real.dtype),
                 what=f"gradient_penalty of a linear critic with ||w|| = {w.double().norm().item():.6g} "
                      f"({shape_note(real, keepdim)})")


def quadratic_penalty(scale, center, real, fake, alpha) -> torch.Tensor:
    """Closed form for c(x) = 0.5 sum scale (x - center)^2: grad = scale (x_hat - center)."""
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
@given(inputs=penalty_inputs())
def gp_quadratic_closed_form(student, inputs):
    real, fake, alpha, keepdim, seed = inputs
    scale, center = quadratic_setup(tuple(real.shape[1:]), seed)
    critic = quadratic_critic(scale, center, real.dtype, keepdim)
    r = call_penalty(student, critic, real, fake, alpha)
    expected = quadratic_penalty(scale.to(real.dtype).double(), center.to(real.dtype).double(), real.double(),
                                 fake.double(), alpha.double())
    expect_close(r.value, expected.to(real.dtype), atol=value_tolerance(real.dtype),
                 what=f"gradient_penalty of c(x) = 0.5 sum scale (x - center)^2, whose gradient at x_hat is "
                      f"scale (x_hat - center) ({shape_note(real, keepdim)}, alpha = {alpha.tolist()})")


@checks.add("gradient_penalty", "backpropagates into the critic's parameters (create_graph=True)", points=2)
@given(inputs=penalty_inputs(), norm=st.floats(0.05, 5.0))
def gp_parameter_gradients(student, inputs, norm):
    real, fake, alpha, keepdim, seed = inputs
    dtype = real.dtype
    # linear critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||; the bias does not matter
    w = (norm * random_direction(tuple(real.shape[1:]), seed)).to(dtype)
    critic = linear_critic(w, 0.5, dtype, keepdim)
    r = student.call("gradient_penalty", critic, real, fake, alpha, wrt=(critic,))
    expect_tensor(r.value, shape=(), dtype=dtype, what="gradient_penalty")
    grads = r.grad(critic) or {}
    expect(grads.get("weight") is not None,
           "no gradient reached the critic's weights: take the input gradient with "
           "torch.autograd.grad(..., create_graph=True) so the penalty stays differentiable")
    wd = w.double()
    expected = 2 * (wd.norm() - 1) * wd / wd.norm()
    expect_close(grads["weight"], expected.to(dtype), atol=grad_tolerance(dtype),
                 what=f"d penalty / d w of a linear critic (= 2 (||w|| - 1) w / ||w||, ||w|| = {wd.norm().item():.6g})")
    if grads.get("bias") is not None:
        expect_close(grads["bias"], torch.zeros((), dtype=dtype), atol=grad_tolerance(dtype),
                     what="d penalty / d bias of a linear critic (the bias does not change the input gradient)")
    # quadratic critic: the closed form differentiated here
    scale, center = quadratic_setup(tuple(real.shape[1:]), seed + 1)
    critic = quadratic_critic(scale, center, dtype, keepdim)
    r = student.call("gradient_penalty", critic, real, fake, alpha, wrt=(critic,))
    grads = r.grad(critic) or {}
    s = scale.to(dtype).double().requires_grad_(True)
    c = center.to(dtype).double().requires_grad_(True)
    d_scale, d_center = torch.autograd.grad(quadratic_penalty(s, c, real.double(), fake.double(), alpha.double()),
                                            (s, c))
    for name, expected in (("scale", d_scale), ("center", d_center)):
        expect(grads.get(name) is not None, f"no gradient reached the critic's {name} parameter")
        expect_close(grads[name], expected.to(dtype), atol=1e-5 if dtype == torch.float32 else 1e-10,
                     what=f"d penalty / d {name} of c(x) = 0.5 sum scale (x - center)^2")


# ---------------------------------------------------------------------- cycle_consistency_loss


@st.composite
def cycle_inputs(draw, dtype=dtypes(), same_dims: bool = False):
    """(x [B, ..., Dx], y [B', ..., Dy], seed): leading dims and batch sizes drawn apart; values in [-3, 3]."""
    dtype = draw(dtype)
    dx = draw(st.integers(1, 4))
    dy = dx if same_dims else draw(st.integers(1, 4))
    mid = st.lists(st.integers(1, 3), max_size=2)
    x_shape = (draw(st.integers(1, 5)), *draw(mid), dx)
    y_shape = (draw(st.integers(1, 5)), *draw(mid), dy)
    x = draw(tensors(x_shape, dtype, low=-3.0, high=3.0))
    y = draw(tensors(y_shape, dtype, low=-3.0, high=3.0))
    return x, y, draw(st.integers(0, 2**16))


@checks.add("cycle_consistency_loss", "zero when F inverts G")
@given(inputs=cycle_inputs(same_dims=True))
def cycle_zero_for_inverses(student, inputs):
    x, y, seed = inputs
    g, f = invertible_pair(x.shape[-1], x.dtype, torch.Generator().manual_seed(seed))
    r = student.call("cycle_consistency_loss", x, y, g, f, return_inputs=True)
    expect_close(r.value, torch.zeros((), dtype=x.dtype), atol=1e-4 if x.dtype == torch.float32 else 1e-10,
                 what=f"cycle loss of an invertible affine G and F = G^-1 (x {list(x.shape)}, y {list(y.shape)})")
    expect_unchanged(r, x, y)


def random_affine_pair(dx: int, dy: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    g = linear_map(torch.randn(dy, dx, generator=gen, dtype=torch.float64),
                   torch.randn(dy, generator=gen, dtype=torch.float64), torch.float64)[1]
    f = linear_map(torch.randn(dx, dy, generator=gen, dtype=torch.float64),
                   torch.randn(dx, generator=gen, dtype=torch.float64), torch.float64)[1]
    return g, f


def as_fixture(module, dtype):
    return linear_map(module.weight.detach(), module.bias.detach(), dtype)[0]


def cycle_definition(x, y, g, f) -> torch.Tensor:
    return (f(g(x)) - x).abs().mean() + (g(f(y)) - y).abs().mean()


@checks.add("cycle_consistency_loss", "equals mean |F(G(x)) - x| + mean |G(F(y)) - y| (affine G: X -> Y, F: Y -> X)",
            points=2)
@given(inputs=cycle_inputs())
def cycle_definition_values(student, inputs):
    x, y, seed = inputs
    g, f = random_affine_pair(x.shape[-1], y.shape[-1], seed)
    r = student.call("cycle_consistency_loss", x, y, as_fixture(g, x.dtype), as_fixture(f, x.dtype),
                     return_inputs=True)
    with torch.no_grad():
        expected = cycle_definition(x.double(), y.double(), g, f)
    expect_close(r.value, expected.to(x.dtype), atol=value_tolerance(x.dtype),
                 what=f"cycle loss (a scalar; x {list(x.shape)}, y {list(y.shape)}, each mean over all elements)")
    expect_unchanged(r, x, y)


@checks.add("cycle_consistency_loss", "gradients reach both G's and F's parameters, as the definition's")
@given(inputs=cycle_inputs())
def cycle_gradients(student, inputs):
    x, y, seed = inputs
    g, f = random_affine_pair(x.shape[-1], y.shape[-1], seed)
    g_fix, f_fix = as_fixture(g, x.dtype), as_fixture(f, x.dtype)
    r = student.call("cycle_consistency_loss", x, y, g_fix, f_fix, wrt=(g_fix, f_fix))
    expect_tensor(r.value, shape=(), dtype=x.dtype, what="cycle loss")
    cycle_definition(x.double(), y.double(), g, f).backward()
    for name, fix, module in (("G", g_fix, g), ("F", f_fix, f)):
        grads = r.grad(fix) or {}
        for param, p in module.named_parameters():
            expect(grads.get(param) is not None, f"no gradient reached {name}'s {param}: call {name} on the tensors, "
                                                 "without .detach() or torch.no_grad()")
            expect_close(grads[param], p.grad.to(x.dtype), atol=1e-5 if x.dtype == torch.float32 else 1e-10,
                         what=f"d loss / d {name}.{param}")
