"""hw4_gan hidden checks: comparisons with reference/gan.py.

Graded only (visibility after_published); never shipped to students. Values
and gradients are compared on inputs the public checks do not use: [B, 1]
outputs with different real / fake batch sizes for the losses, random MLP
critics (vectors and images) for the gradient penalty, and MLP maps for the
cycle loss. The reference always runs in float64.
"""
from __future__ import annotations

import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_unchanged
from grader.strategies import dtypes, tensors
from reference import gan as ref

from .checks_public import DERIVATIVES, grad_tolerance, value_tolerance
from .models import mlp_critic, mlp_map

checks = Checks(hidden=True)


@st.composite
def column_batches(draw, n_args: int, dtype=dtypes()):
    """[B_i, 1] batches in [-100, 100], one size per argument."""
    dtype = draw(dtype)
    return tuple(draw(tensors((draw(st.integers(1, 16)), 1), dtype, low=-100.0, high=100.0)) for _ in range(n_args))


def matches_reference(student, fn: str, inputs: tuple[torch.Tensor, ...]) -> None:
    dtype = inputs[0].dtype
    r = student.call(fn, *inputs, wrt=inputs)
    as_double = tuple(t.double().requires_grad_(True) for t in inputs)
    expected = getattr(ref, fn)(*as_double)
    ref_grads = torch.autograd.grad(expected, as_double)
    expect_close(r.value, expected.detach().to(dtype), what=fn, atol=value_tolerance(dtype))
    for t, g_ref, (_, name, _) in zip(inputs, ref_grads, DERIVATIVES[fn]):
        g = r.grad(t)
        expect(g is not None, f"no gradient reached {name}")
        expect_close(g, g_ref.to(dtype), what=f"d {fn} / d {name}", atol=grad_tolerance(dtype))


@checks.add("d_loss_minimax", "matches the reference (values and gradients) on [B, 1] logits")
@given(inputs=column_batches(2))
def d_minimax_reference(student, inputs):
    matches_reference(student, "d_loss_minimax", inputs)


@checks.add("g_loss_minimax", "matches the reference (values and gradients) on [B, 1] logits")
@given(inputs=column_batches(1))
def g_minimax_reference(student, inputs):
    matches_reference(student, "g_loss_minimax", inputs)


@checks.add("g_loss_nonsaturating", "matches the reference (values and gradients) on [B, 1] logits")
@given(inputs=column_batches(1))
def g_ns_reference(student, inputs):
    matches_reference(student, "g_loss_nonsaturating", inputs)


@checks.add("d_loss_lsgan", "matches the reference (values and gradients) on [B, 1] outputs")
@given(inputs=column_batches(2))
def d_lsgan_reference(student, inputs):
    matches_reference(student, "d_loss_lsgan", inputs)


@checks.add("g_loss_lsgan", "matches the reference (values and gradients) on [B, 1] outputs")
@given(inputs=column_batches(1))
def g_lsgan_reference(student, inputs):
    matches_reference(student, "g_loss_lsgan", inputs)


@checks.add("d_loss_wgan", "matches the reference (values and gradients) on [B, 1] outputs")
@given(inputs=column_batches(2))
def d_wgan_reference(student, inputs):
    matches_reference(student, "d_loss_wgan", inputs)


@checks.add("g_loss_wgan", "matches the reference (values and gradients) on [B, 1] outputs")
@given(inputs=column_batches(1))
def g_wgan_reference(student, inputs):
    matches_reference(student, "g_loss_wgan", inputs)


# ---------------------------------------------------------------------- gradient_penalty

EVENT_SHAPES = [(3,), (5,), (1, 2, 2), (2, 3, 2), (3, 2, 2)]


@checks.add("gradient_penalty", "matches the reference for MLP critics on vectors and images (value and "
                                "gradients wrt the critic's parameters)", points=2, examples=12)
@given(dtype=dtypes(), b=st.integers(1, 6), event=st.sampled_from(EVENT_SHAPES), keepdim=st.booleans(),
       seed=st.integers(0, 2**16))
def gp_mlp_reference(student, dtype, b, event, keepdim, seed):
    gen = torch.Generator().manual_seed(seed)
    fixture, critic = mlp_critic(event, [8], dtype, keepdim, gen)
    real = (2 * torch.rand((b, *event), generator=gen, dtype=torch.float64) - 1).to(dtype)
    fake = (2 * torch.rand((b, *event), generator=gen, dtype=torch.float64) - 1).to(dtype)
    alpha = torch.rand(b, generator=gen, dtype=torch.float64).to(dtype)
    # the reference, in float64 on the same (rounded) inputs and weights
    critic = critic.to(dtype).double()
    penalty = ref.gradient_penalty(critic, real.double(), fake.double(), alpha.double())
    params = dict(critic.named_parameters())
    ref_grads = dict(zip(params, torch.autograd.grad(penalty, list(params.values()), allow_unused=True)))
    x_hat = (alpha.double()[:, None] * real.double().flatten(1) + (1 - alpha.double()[:, None]) * fake.double()
             .flatten(1)).reshape(real.shape).requires_grad_(True)
    (input_grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    assume(float(input_grad.flatten(1).norm(dim=1).min()) >= 1e-2)  # the spec's well-conditioned domain

    r = student.call("gradient_penalty", fixture, real, fake, alpha, wrt=(fixture,), return_inputs=True)
    output = "[B, 1]" if keepdim else "[B]"
    expect_close(r.value, penalty.detach().to(dtype), atol=value_tolerance(dtype),
                 what=f"gradient_penalty (MLP critic, real/fake {list(real.shape)}, critic output {output})")
    expect_unchanged(r, real, fake, alpha)
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


@checks.add("cycle_consistency_loss", "matches the reference for MLP maps (value and gradients wrt G and F)",
            examples=12)
@given(dtype=dtypes(), dx=st.integers(1, 4), dy=st.integers(1, 4), bx=st.integers(1, 6), by=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def cycle_mlp_reference(student, dtype, dx, dy, bx, by, seed):
    gen = torch.Generator().manual_seed(seed)
    g_fix, g = mlp_map(dx, dy, [6], dtype, gen)
    f_fix, f = mlp_map(dy, dx, [6], dtype, gen)
    x = (3 * torch.randn(bx, dx, generator=gen, dtype=torch.float64)).to(dtype)
    y = (3 * torch.randn(by, dy, generator=gen, dtype=torch.float64)).to(dtype)
    g, f = g.to(dtype).double(), f.to(dtype).double()
    loss = ref.cycle_consistency_loss(x.double(), y.double(), g, f)
    loss.backward()
    r = student.call("cycle_consistency_loss", x, y, g_fix, f_fix, wrt=(g_fix, f_fix))
    expect_close(r.value, loss.detach().to(dtype), what="cycle loss", atol=value_tolerance(dtype))
    for name, fix, module in (("G", g_fix, g), ("F", f_fix, f)):
        grads = r.grad(fix) or {}
        for param, p in module.named_parameters():
            expect(grads.get(param) is not None, f"no gradient reached {name}'s {param}")
            expect_close(grads[param], p.grad.to(dtype), what=f"d loss / d {name}.{param}",
                         atol=1e-5 if dtype == torch.float32 else 1e-10)
