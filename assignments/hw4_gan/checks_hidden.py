"""hw4_gan hidden checks: comparisons with reference/gan.py.

Graded only (visibility after_published); never shipped to students. These
are the value pins that need the functions' definitions: each loss on generic
[B] or [B, 1] batches with different real / fake sizes (and, for the logit
losses, on logits from -100 to 100 in float32 and float64), random MLP
critics (vectors and images) for the gradient penalty, and affine maps
between spaces of different dimension and MLP maps for the cycle loss. The
reference always runs in float64. The public checks of special cases and
symmetries count only when these pass (``requires`` in checks_public.py).
"""
from __future__ import annotations

import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor
from grader.strategies import dtypes
from reference import gan as ref

from .checks_public import EXTREME_LOGITS, draw_cycle_inputs
from .models import (ARGUMENTS, BATCHES, DIFFERENTIABLE, STABILITY, draw_loss_inputs, expect_untouched,
                     grad_tolerance, handout, linear_map, mlp_critic, mlp_map, value_tolerance)

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
