"""hw4_gan hidden checks: comparisons with reference/gan.py.

Graded only (visibility after_published); never shipped to students. These
are the value pins that need the functions' definitions: each loss on generic
[B] or [B, 1] batches with different real / fake sizes (and, for the logit
losses, on logits from -100 to 100 in float32 and float64), random MLP
critics (vectors and images) for the gradient penalty, and affine maps
between spaces of different dimension and MLP maps for the cycle loss. The
reference always runs in float64. Besides, closed forms on special inputs:
the penalty and its parameter gradients for linear and quadratic critics,
and the cycle loss and its gradients for affine maps whose cycles are
translations. Every public check counts only when these pass (``requires``
in checks_public.py).
"""
from __future__ import annotations

import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor
from grader.strategies import dtypes
from reference import gan as ref

from .checks_public import (EXTREME_LOGITS, call_penalty, draw_cycle_inputs, draw_penalty_inputs, quadratic_setup,
                            random_direction, rounded, shape_note)
from .models import (ARGUMENTS, BATCHES, CREATE_GRAPH, DIFFERENTIABLE, STABILITY, draw_loss_inputs, expect_untouched,
                     grad_tolerance, handout, linear_critic, linear_map, mlp_critic, mlp_map, quadratic_critic,
                     translation_pair, value_tolerance)

checks = Checks(hidden=True)


def matches_reference(student, fn: str, inputs: dict[str, torch.Tensor], *, where: str = "",
                      atol: tuple[float, float] | None = None) -> None:
    """Value, gradients with respect to every argument, and the inputs untouched, against the reference."""
    tensors_in = tuple(inputs.values())
    dtype = tensors_in[0].dtype
    r = student.call(fn, *tensors_in, wrt=tensors_in, return_inputs=True)
    as_double = tuple(t.double().requires_grad_(True) for t in tensors_in)
    expected = getattr(ref, fn)(*as_double)
    ref_grads = torch.autograd.grad(expected, as_double)
    value_atol, grad_atol = atol or (value_tolerance(dtype), grad_tolerance(dtype))
    expect_tensor(r.value, shape=(), dtype=dtype, what=f"{fn}{where} (a scalar: {BATCHES})")
    expect_close(r.value, expected.detach().to(dtype), atol=value_atol, what=f"{fn}{where} ({handout(fn)})")
    expect_untouched(r, **inputs)
    for t, g_ref, name in zip(tensors_in, ref_grads, inputs):
        g = r.grad(t)
        expect(g is not None, f"no gradient reached {name} ({DIFFERENTIABLE})")
        expect_close(g, g_ref.to(dtype), atol=grad_atol, what=f"d {fn} / d {name}{where}")


def add_value_check(fn: str, check_id: str, points: float, *, extremes: bool) -> None:
    """The hidden value pin of a loss: the reference's value and gradients on generic batches."""

    def body(student, data):
        matches_reference(student, fn, draw_loss_inputs(data, fn, max_size=16))
        if extremes:  # the handout's stability range, every argument at once
            for dtype in (torch.float32, torch.float64):
                inputs = {name: torch.tensor(EXTREME_LOGITS, dtype=dtype) for name in ARGUMENTS[fn]}
                matches_reference(student, fn, inputs, atol=(1e-4, 1e-6),
                                  where=f" on logits {EXTREME_LOGITS} in {str(dtype).removeprefix('torch.')} "
                                        f"({STABILITY})")

    body.__name__ = body.__qualname__ = check_id  # the check's id
    scope = "[B] or [B, 1] batches, sizes apart" + (", and logits of ±100 in float32 and float64" if extremes else "")
    checks.add(fn, f"equals the handout's definition (the reference): values and gradients on {scope}",
               points=points)(given(data=st.data())(body))


add_value_check("d_loss_minimax", "d_minimax_values", 3, extremes=True)
add_value_check("g_loss_minimax", "g_minimax_values", 3, extremes=True)
add_value_check("g_loss_nonsaturating", "g_ns_values", 3, extremes=True)
add_value_check("d_loss_lsgan", "d_lsgan_values", 2, extremes=False)
add_value_check("g_loss_lsgan", "g_lsgan_values", 2, extremes=False)
add_value_check("d_loss_wgan", "d_wgan_values", 2, extremes=False)
add_value_check("g_loss_wgan", "g_wgan_values", 2, extremes=False)


# ---------------------------------------------------------------------- gradient_penalty

EXAMPLE_SHAPES = [(3,), (5,), (1, 2, 2), (2, 3, 2), (3, 2, 2)]


@checks.add("gradient_penalty", "matches the reference for MLP critics on vectors and images (value and "
                                "gradients wrt the critic's parameters)", points=2, examples=12)
@given(dtype=dtypes(), batch_size=st.integers(1, 6), example_shape=st.sampled_from(EXAMPLE_SHAPES),
       critic_returns_column=st.booleans(), weights_seed=st.integers(0, 2**16))
def gp_mlp_reference(student, dtype, batch_size, example_shape, critic_returns_column, weights_seed):
    gen = torch.Generator().manual_seed(weights_seed)
    fixture, critic = mlp_critic(example_shape, [8], dtype, critic_returns_column, gen)
    real = (2 * torch.rand((batch_size, *example_shape), generator=gen, dtype=torch.float64) - 1).to(dtype)
    fake = (2 * torch.rand((batch_size, *example_shape), generator=gen, dtype=torch.float64) - 1).to(dtype)
    alpha = torch.rand(batch_size, generator=gen, dtype=torch.float64).to(dtype)
    # the reference, in float64 on the same (rounded) inputs and weights
    critic = critic.to(dtype).double()
    penalty = ref.gradient_penalty(critic, real.double(), fake.double(), alpha.double())
    params = dict(critic.named_parameters())
    ref_grads = dict(zip(params, torch.autograd.grad(penalty, list(params.values()), allow_unused=True)))
    x_hat = (alpha.double()[:, None] * real.double().flatten(1) + (1 - alpha.double()[:, None]) * fake.double()
             .flatten(1)).reshape(real.shape).requires_grad_(True)
    (input_grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    assume(float(input_grad.flatten(1).norm(dim=1).min()) >= 1e-2)  # the handout's well-conditioned domain

    r = student.call("gradient_penalty", fixture, real, fake, alpha, wrt=(fixture,), return_inputs=True)
    output = "[B, 1]" if critic_returns_column else "[B]"
    expect_close(r.value, penalty.detach().to(dtype), atol=value_tolerance(dtype),
                 what=f"gradient_penalty (MLP critic, real/fake {list(real.shape)}, critic output {output}; "
                      f"{handout('gradient_penalty')})")
    expect_untouched(r, real=real, fake=fake, alpha=alpha)
    grads = r.grad(fixture) or {}
    for name, g_ref in ref_grads.items():
        if g_ref is None:  # the last bias does not move the input gradient: None or zeros are both right
            g_ref = torch.zeros_like(params[name])
            if grads.get(name) is None:
                continue
        expect(grads.get(name) is not None, f"no gradient reached the critic's {name} (create_graph=True?)")
        expect_close(grads[name], g_ref.detach().to(dtype), what=f"d penalty / d critic.{name}",
                     atol=1e-5 if dtype == torch.float32 else 1e-10)


def quadratic_critic_penalty(scale, center, real, fake, alpha) -> torch.Tensor:
    """The penalty of c(x) = 0.5 sum scale (x - center)^2, whose input gradient is scale (x - center)."""
    a = alpha.reshape(-1, *([1] * (real.dim() - 1)))
    x_hat = a * real + (1 - a) * fake
    norms = (scale * (x_hat - center)).flatten(1).norm(dim=1)
    return ((norms - 1) ** 2).mean()


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


@checks.add("gradient_penalty", "parameter gradients match the closed forms for a linear and a quadratic critic "
                                "(create_graph=True)")
@given(data=st.data())
def gp_parameter_gradients_closed_form(student, data):
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


def compare_cycle(student, x, y, maps: dict[str, tuple], *, what: str) -> None:
    """maps: name -> (fixture, the same module in float64): value, inputs untouched, parameter gradients."""
    (g_fix, g), (f_fix, f) = maps["G"], maps["F"]
    dtype = x.dtype
    g, f = g.to(dtype).double(), f.to(dtype).double()
    loss = ref.cycle_consistency_loss(x.double(), y.double(), g, f)
    loss.backward()
    r = student.call("cycle_consistency_loss", x, y, g_fix, f_fix, wrt=(g_fix, f_fix), return_inputs=True)
    expect_close(r.value, loss.detach().to(dtype), atol=value_tolerance(dtype),
                 what=f"cycle loss ({what}, x {list(x.shape)}, y {list(y.shape)}; {handout('cycle_consistency_loss')})")
    expect_untouched(r, x=x, y=y)
    for name, fix, module in (("G", g_fix, g), ("F", f_fix, f)):
        grads = r.grad(fix) or {}
        for param, p in module.named_parameters():
            expect(grads.get(param) is not None, f"no gradient reached {name}'s {param}: call {name} on the tensors, "
                                                 f"without .detach() or torch.no_grad() ({DIFFERENTIABLE})")
            expect_close(grads[param], p.grad.to(dtype), what=f"d loss / d {name}.{param}",
                         atol=1e-5 if dtype == torch.float32 else 1e-10)


@checks.add("cycle_consistency_loss", "matches the reference for affine G: X -> Y, F: Y -> X between spaces of "
                                      "different dimension (value and gradients wrt G and F)", points=3)
@given(data=st.data())
def cycle_affine_reference(student, data):
    i = draw_cycle_inputs(data, same_dims=False)
    x, y = i["x"], i["y"]
    dx, dy = x.shape[-1], y.shape[-1]
    gen = torch.Generator().manual_seed(i["seed"])
    maps = {"G": linear_map(torch.randn(dy, dx, generator=gen, dtype=torch.float64),
                            torch.randn(dy, generator=gen, dtype=torch.float64), x.dtype),
            "F": linear_map(torch.randn(dx, dy, generator=gen, dtype=torch.float64),
                            torch.randn(dx, generator=gen, dtype=torch.float64), x.dtype)}
    compare_cycle(student, x, y, maps, what="affine maps")


@checks.add("cycle_consistency_loss", "matches the reference for MLP maps (value and gradients wrt G and F)",
            examples=12)
@given(dtype=dtypes(), D_x=st.integers(1, 4), D_y=st.integers(1, 4), B=st.integers(1, 6), B_y=st.integers(1, 6),
       maps_seed=st.integers(0, 2**16))
def cycle_mlp_reference(student, dtype, D_x, D_y, B, B_y, maps_seed):
    gen = torch.Generator().manual_seed(maps_seed)
    maps = {"G": mlp_map(D_x, D_y, [6], dtype, gen), "F": mlp_map(D_y, D_x, [6], dtype, gen)}
    x = (3 * torch.randn(B, D_x, generator=gen, dtype=torch.float64)).to(dtype)
    y = (3 * torch.randn(B_y, D_y, generator=gen, dtype=torch.float64)).to(dtype)
    compare_cycle(student, x, y, maps, what="MLP maps")


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
                                      "when F(G(x)) = x + delta and G(F(y)) = y + W delta")
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
