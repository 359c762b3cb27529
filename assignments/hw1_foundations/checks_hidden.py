"""hw1_foundations hidden checks: comparisons with reference/foundations.py.

Graded only (visibility after_published); never shipped to students. The
reference runs in float64 on the same inputs; float32 submissions are judged
within about 1e-3 relative (scaled by the size of the terms a sum cancels).
"""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor, expect_tuple
from grader.strategies import batch_and_event, dtypes, gaussians, tensors
from reference import foundations as ref

from .checks_public import (
    F64,
    em_outputs,
    expect_close_scaled,
    far_and_near_points,
    is_f32,
    mixture_terms,
    mixtures,
    mle_data,
    mle_outputs,
    uniform_pairs,
)
from .models import Mixture, diag_normal_terms, em_problems

checks = Checks(hidden=True)


@checks.add("box_muller", "matches the reference")
@given(u=uniform_pairs())
def bm_matches_reference(student, u):
    u1, u2 = u
    z1, z2 = expect_tuple(student.box_muller(u1, u2), 2, what="box_muller(u1, u2)")
    e1, e2 = ref.box_muller(u1.double(), u2.double())
    atol = 2e-5 * (1 + float(e1.abs().max() + e2.abs().max())) if is_f32(u1.dtype) else 2e-6
    expect_close(z1, e1.to(u1.dtype), what="z1", atol=atol)
    expect_close(z2, e2.to(u1.dtype), what="z2", atol=atol)


@checks.add("gaussian_mle", "matches the reference (mean, and covariance dividing by N)", points=2)
@given(x=mle_data(n=st.integers(1, 60), d=st.integers(1, 6)), dtype=dtypes(), shift=st.floats(-100, 100))
def mle_matches_reference(student, x, dtype, shift):
    x = (x + shift).to(dtype)
    d = x.shape[1]
    mean, cov = mle_outputs(student.gaussian_mle(x), d, dtype)
    e_mean, e_cov = ref.gaussian_mle(x.double())
    f32 = is_f32(dtype)
    expect_close(mean, e_mean.to(dtype), what="mean", atol=(1e-5 if f32 else 1e-12) * float(x.double().abs().max()))
    expect_close(cov, e_cov.to(dtype), what="cov (maximum likelihood: divide by N)",
                 atol=(1e-4 if f32 else 1e-10) * float(e_cov.abs().max()))


@checks.add("diag_gaussian_log_prob", "matches the reference at extreme means and log-variances")
@given(data=st.data(), be=batch_and_event(), dtype=dtypes())
def dglp_matches_reference(student, data, be, dtype):
    shape = (*be[0], be[1])
    g = data.draw(gaussians(shape, dtype))
    x = g.mean + data.draw(tensors(shape, dtype, low=-1e3, high=1e3))
    got = expect_tensor(student.diag_gaussian_log_prob(x, g.mean, g.log_var), shape=be[0], dtype=dtype,
                        what="log-density")
    expected = ref.diag_gaussian_log_prob(x.double(), g.mean.double(), g.log_var.double())
    expect_close_scaled(got, expected, diag_normal_terms(x, g.mean, g.log_var), what="log-density")


@checks.add("gmm_log_likelihood", "matches the reference (brute-force marginalisation), also 1e3 away from "
            "every mean", points=2)
@given(data=st.data(), mix=mixtures(k=st.integers(1, 6), d=st.integers(1, 4), log_var_range=(-6.0, 6.0)),
       dtype=dtypes())
def gmm_matches_reference(student, data, mix, dtype):
    x = data.draw(far_and_near_points(mix.means, n=st.integers(1, 12)))
    got = expect_tensor(student.gmm_log_likelihood(x.to(dtype), *mix.to(dtype).astuple()), shape=(len(x),),
                        dtype=dtype, what="log p(x)")
    x, mix = x.to(dtype).double(), mix.to(dtype).to(F64)
    expected = ref.gmm_log_likelihood(x, *mix.astuple())
    expect_close_scaled(got, expected, mixture_terms(x, mix), what="log p(x)")


@checks.add("gmm_em_step", "matches the reference update", points=3)
@given(problem=em_problems(k=st.integers(1, 5), d=st.integers(1, 4)), dtype=dtypes())
def em_matches_reference(student, problem, dtype):
    x, mix = problem
    x, mix = x.to(dtype), mix.to(dtype)
    k, d = mix.k, x.shape[1]
    new = em_outputs(student.gmm_em_step(x, *mix.astuple()), k, d, dtype)
    expected = Mixture(*ref.gmm_em_step(x.double(), *mix.to(F64).astuple()))
    f32 = is_f32(dtype)
    scale = float(x.double().abs().max()) + 1
    expect_close(new.log_weights, expected.log_weights.to(dtype), what="new log_weights", atol=1e-4 if f32 else 1e-10)
    expect_close(new.means, expected.means.to(dtype), what="new means", atol=(1e-4 if f32 else 1e-10) * scale)
    expect_close(new.log_vars, expected.log_vars.to(dtype), what="new log_vars", atol=1e-3 if f32 else 1e-9)


@checks.add("gmm_em_step", "differentiable: gradients of the update match the reference's")
@given(problem=em_problems(k=st.integers(1, 4), n=st.integers(24, 60)), seed=st.integers(0, 2**16))
def em_gradients_match_reference(student, problem, seed):
    """The handout asks to keep everything differentiable (unrolled EM): no .detach(), no torch.no_grad()."""
    x, mix = problem
    args = (x, *mix.astuple())
    gen = torch.Generator().manual_seed(seed)
    names = ("x", "log_weights", "means", "log_vars")
    for out, out_name in enumerate(("new log_weights", "new means", "new log_vars")):
        shape = args[out + 1].shape
        cot = torch.randn(shape, generator=gen, dtype=F64)
        r = student.call("gmm_em_step", *args, wrt=args, output=(out,), cotangent=cot)
        em_outputs(r.value, mix.k, x.shape[1], F64)
        leaves = [t.clone().requires_grad_() for t in args]
        (ref.gmm_em_step(*leaves)[out] * cot).sum().backward()
        for t, leaf, name in zip(args, leaves, names):
            grad = r.grad(t)
            expect(grad is not None, f"no gradient of the {out_name} reached {name} (keep the update in torch: "
                                     "no .detach(), no torch.no_grad(), no .item())")
            expect_close(grad, leaf.grad, what=f"d <cotangent, {out_name}> / d {name}",
                         atol=1e-9 * (1 + float(leaf.grad.abs().max())))
