"""hw1_foundations hidden checks: comparisons with reference/foundations.py.

Graded only (visibility after_published); never shipped to students. The
reference runs in float64 on the same inputs; float32 submissions are judged
within about 1e-3 relative (scaled by the size of the terms a sum cancels).

The ``*_matches_reference`` checks pin each function's value on generic
inputs (for gmm_em_step the only such pin: no public property fixes an EM
step on generic data); the ``*_gradients_match_reference`` checks pin the
gradients (the public ``*_gradients`` checks compare them only with finite
differences of the student's own values). The other hidden checks test
special cases or consistency and ``require`` those pins.
"""
from __future__ import annotations

import math

import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor, expect_tuple
from grader.strategies import dtypes, gaussians, shapes, tensors
from reference import foundations as ref

from .checks_public import (
    EM_PIN,
    GMM_FORMULA,
    GMM_STABLE,
    dglp_gradient_inputs,
    em_outputs,
    expect_close_scaled,
    far_and_near_points,
    far_points,
    is_f32,
    mixture_terms,
    mixtures,
    mle_data,
    mle_outputs,
    uniforms,
)
from .models import F64, Mixture, diag_normal_terms, em_problems

checks = Checks(hidden=True)


def reference_counts(x: torch.Tensor, mix: Mixture) -> torch.Tensor:
    """N_k = sum_n r_nk under ``mix`` (float64): N times the reference's new weights."""
    with torch.no_grad():
        new_log_weights = ref.gmm_em_step(x.double(), *mix.to(F64).astuple())[0]
    return len(x) * new_log_weights.exp()


def log_likelihood(x: torch.Tensor, mix: Mixture) -> float:
    """sum_n log p(x_n) under ``mix`` with the reference (float64)."""
    with torch.no_grad():
        return float(ref.gmm_log_likelihood(x.double(), *mix.to(F64).astuple()).sum())


def project_normalised(grad: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
    """A log_weights gradient as it acts on directions that keep the weights normalised.

    Those directions t satisfy sum_k w_k t_k = 0, so gradients that differ by a
    multiple of w act alike on them; ``g - w sum_k g_k`` is the representative
    with sum_k g_k = 0 (what an implementation that renormalises returns).
    """
    w = log_weights.double().exp()
    return grad.double() - w * grad.double().sum()


@checks.add("box_muller", "matches the reference")
@given(u=uniforms())
def bm_matches_reference(student, u):
    z1, z2 = expect_tuple(student.box_muller(u.u1, u.u2), 2, what="box_muller(u1, u2)")
    e1, e2 = ref.box_muller(u.u1.double(), u.u2.double())
    atol = 2e-5 * (1 + float(e1.abs().max() + e2.abs().max())) if is_f32(u.u1.dtype) else 2e-6
    expect_close(z1, e1.to(u.u1.dtype), what="z1 (the handout: z1 = r * cos(2 pi u2), r = sqrt(-2 ln u1))", atol=atol)
    expect_close(z2, e2.to(u.u1.dtype), what="z2 (the handout: z2 = r * sin(2 pi u2), r = sqrt(-2 ln u1))", atol=atol)


@checks.add("box_muller", "gradients with respect to u1 and u2 match the closed form")
@given(data=st.data(), shape=shapes(max_dims=2), dtype=dtypes())
def bm_gradients_match_reference(student, data, shape, dtype):
    """u1 in [1e-3, 0.999] as in the public ``bm_gradients`` (the radius has unbounded slope at 0 and 1)."""
    u1 = data.draw(tensors(shape, dtype, low=1e-3, high=0.999), label="u1")
    u2 = data.draw(tensors(shape, dtype, low=1e-30, high=1.0), label="u2")
    cot = data.draw(tensors(shape, dtype, low=-2, high=2), label="cotangent")
    a, b, c = u1.double(), u2.double(), cot.double()
    radius = (-2.0 * a.log()).sqrt()
    cos, sin = (2 * math.pi * b).cos(), (2 * math.pi * b).sin()
    expected = {  # d z / d u1 = (cos or sin) * d r / d u1, with d r / d u1 = -1 / (u1 r)
        0: (-c * cos / (a * radius), -c * 2 * math.pi * radius * sin),
        1: (-c * sin / (a * radius), c * 2 * math.pi * radius * cos),
    }
    for out, name in ((0, "z1"), (1, "z2")):
        r = student.call("box_muller", u1, u2, wrt=(u1, u2), output=(out,), cotangent=cot)
        expect_tuple(r.value, 2, what="box_muller(u1, u2)")
        for t, arg, exp in ((u1, "u1", expected[out][0]), (u2, "u2", expected[out][1])):
            grad = r.grad(t)
            expect(grad is not None, f"no gradient of {name} reached {arg} (the handout: keep everything "
                                     "differentiable; no .detach(), no .item(), no numpy)")
            # float32: u1 near 0.999 makes the radius's slope -1 / (u1 r) about 22, rounded relative to the largest
            expect_close(grad, exp.to(dtype), what=f"d <cotangent, {name}> / d {arg}",
                         atol=(1e-4 if is_f32(dtype) else 1e-9) * (1 + float(exp.abs().max())))


@checks.add("gaussian_mle", "matches the reference (mean, and covariance dividing by N)", points=2)
@given(x=mle_data(n=st.integers(1, 60), d=st.integers(1, 6)), dtype=dtypes(), shift=st.floats(-100, 100))
def mle_matches_reference(student, x, dtype, shift):
    x = (x + shift).to(dtype)
    d = x.shape[1]
    mean, cov = mle_outputs(student.gaussian_mle(x), d, dtype)
    e_mean, e_cov = ref.gaussian_mle(x.double())
    f32 = is_f32(dtype)
    expect_close(mean, e_mean.to(dtype), what="mean (the handout: mean = (1/N) sum_n x_n)",
                 atol=(1e-5 if f32 else 1e-12) * float(x.double().abs().max()))
    expect_close(cov, e_cov.to(dtype),
                 what="cov (the handout: cov = (1/N) sum_n (x_n - mean)(x_n - mean)^T, divide by N, not N - 1)",
                 atol=(1e-4 if f32 else 1e-10) * float(e_cov.abs().max()))


@checks.add("gaussian_mle", "gradients of mean and cov with respect to x match the closed form (divide by N)")
@given(x=mle_data(n=st.integers(2, 20)), dtype=dtypes(), seed=st.integers(0, 2**16))
def mle_gradients_match_reference(student, x, dtype, seed):
    n, d = x.shape
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, generator=gen, dtype=F64)
    c = torch.randn(d, d, generator=gen, dtype=F64)
    xt = x.to(dtype)
    centred = x - x.mean(0)
    f32 = is_f32(dtype)
    for out, name, cot, expected in (
        (0, "mean", a, (a / n).expand(n, d)),  # d (a . mean) / d x_n = a / N
        (1, "cov", c, centred @ (c + c.T) / n),  # d <C, cov> / d x_n = (C + C^T) (x_n - mean) / N
    ):
        r = student.call("gaussian_mle", xt, wrt=(xt,), output=(out,), cotangent=cot.to(dtype))
        mle_outputs(r.value, d, dtype)
        grad = r.grad(xt)
        expect(grad is not None, f"no gradient of {name} reached x (the handout: keep everything differentiable; "
                                 "no .detach(), no .item(), no numpy)")
        expect_close(grad, expected.to(dtype), what=f"d <cotangent, {name}> / d x (the handout: divide by N, "
                     "not N - 1)", atol=(1e-4 if f32 else 1e-10) * (1 + float(expected.abs().max())))


@checks.add("diag_gaussian_log_prob", "matches the reference at extreme means and log-variances")
@given(data=st.data(), batch_shape=shapes(min_dims=0, max_dims=2, max_side=4), d=st.integers(1, 6), dtype=dtypes())
def dglp_matches_reference(student, data, batch_shape, d, dtype):
    shape = (*batch_shape, d)
    g = data.draw(gaussians(shape, dtype), label="gaussian")
    x = g.mean + data.draw(tensors(shape, dtype, low=-1e3, high=1e3), label="x - mean")
    got = expect_tensor(student.diag_gaussian_log_prob(x, g.mean, g.log_var), shape=batch_shape, dtype=dtype,
                        what="log-density")
    expected = ref.diag_gaussian_log_prob(x.double(), g.mean.double(), g.log_var.double())
    expect_close_scaled(got, expected, diag_normal_terms(x, g.mean, g.log_var),
                        what="log-density (the handout: log N(x; mean, diag(exp(log_var))) = -0.5 * sum_d [ log(2 pi) "
                             "+ log_var_d + (x_d - mean_d)^2 / exp(log_var_d) ])")


@checks.add("diag_gaussian_log_prob", "gradients with respect to x, mean and log_var match the closed form")
@given(data=st.data(), batch_shape=shapes(min_dims=0, max_dims=2, max_side=4), d=st.integers(1, 4), dtype=dtypes())
def dglp_gradients_match_reference(student, data, batch_shape, d, dtype):
    x, g, cot = dglp_gradient_inputs(data, batch_shape, d, dtype)
    r = student.call("diag_gaussian_log_prob", x, g.mean, g.log_var, wrt=(x, g.mean, g.log_var), cotangent=cot)
    expect_tensor(r.value, shape=batch_shape, dtype=dtype, what="log-density")
    xd, md, vd, cd = x.double(), g.mean.double(), g.log_var.double(), cot.double()[..., None]
    z = (xd - md) * (-vd).exp()  # (x - mean) / var
    expected = {
        "x": -cd * z,
        "mean": cd * z,
        "log_var": cd * (-0.5 + 0.5 * (xd - md) ** 2 * (-vd).exp()),
    }
    # the size of the terms each gradient is made of (|cotangent| <= 2): float32 rounds them to ~1e-7 relative
    scale = float(((xd - md) ** 2 * (-vd).exp()).abs().max() + z.abs().max() + 1) * 2
    for name, t in (("x", x), ("mean", g.mean), ("log_var", g.log_var)):
        grad = r.grad(t)
        expect(grad is not None, f"no gradient reached {name} (the handout: keep everything differentiable; no "
                                 ".detach() or .item())")
        expect_close(grad, expected[name].to(dtype), what=f"d log N / d {name}",
                     atol=(1e-5 if is_f32(dtype) else 1e-10) * scale)


@checks.add("gmm_log_likelihood", "matches the reference (brute-force marginalisation), also 1e3 away from "
            "every mean", points=2)
@given(data=st.data(), mix=mixtures(k=st.integers(1, 6), d=st.integers(1, 4), log_var_range=(-6.0, 6.0)),
       dtype=dtypes())
def gmm_matches_reference(student, data, mix, dtype):
    x = data.draw(far_and_near_points(mix.means, n=st.integers(1, 12)), label="x")
    got = expect_tensor(student.gmm_log_likelihood(x.to(dtype), *mix.to(dtype).astuple()), shape=(len(x),),
                        dtype=dtype, what=f"log p(x) ({GMM_STABLE})")
    x, mix = x.to(dtype).double(), mix.to(dtype).to(F64)
    expected = ref.gmm_log_likelihood(x, *mix.astuple())
    expect_close_scaled(got, expected, mixture_terms(x, mix), what=f"log p(x) (the handout: {GMM_FORMULA})")


@checks.add("gmm_log_likelihood", "one component at the limits of the stable domain (means up to 1e3, "
            "log-variances in [-30, 30], points 1e3 away) matches the reference", requires=("gmm_matches_reference",))
@given(data=st.data(), d=st.integers(1, 4), n=st.integers(1, 8), dtype=dtypes())
def gmm_one_component_limits(student, data, d, n, dtype):
    g = data.draw(gaussians((1, d), dtype), label="component (means [1, D], log_vars [1, D])")
    x = data.draw(tensors((n, d), dtype, low=-1e3, high=1e3), label="x")
    log_w = torch.zeros(1, dtype=dtype)
    got = expect_tensor(student.gmm_log_likelihood(x, log_w, g.mean, g.log_var), shape=(n,), dtype=dtype,
                        what=f"log p(x) with K = 1 (log_weights = [0]; {GMM_STABLE})")
    expected = ref.gmm_log_likelihood(x.double(), log_w.double(), g.mean.double(), g.log_var.double())
    expect_close_scaled(got, expected, diag_normal_terms(x, g.mean, g.log_var),
                        what="log p(x) with K = 1 (= log N(x; mean, diag(exp(log_var))))")


@checks.add("gmm_em_step", "matches the reference update", points=3)
@given(problem=em_problems(k=st.integers(1, 5), d=st.integers(1, 4)), dtype=dtypes())
def em_matches_reference(student, problem, dtype):
    assume(float(reference_counts(problem.x, problem.start).min()) >= 1.0)  # no empty component
    x, mix = problem.x.to(dtype), problem.start.to(dtype)
    k, d = mix.k, x.shape[1]
    new = em_outputs(student.gmm_em_step(x, *mix.astuple()), k, d, dtype)
    expected = Mixture(*ref.gmm_em_step(x.double(), *mix.to(F64).astuple()))
    f32 = is_f32(dtype)
    scale = float(x.double().abs().max()) + 1
    expect_close(new.log_weights, expected.log_weights.to(dtype),
                 what="new log_weights (the handout: weights_k = N_k / N with N_k = sum_n r_nk; return its log)",
                 atol=1e-4 if f32 else 1e-10)
    expect_close(new.means, expected.means.to(dtype), what="new means (the handout: means_k = (1/N_k) sum_n r_nk x_n)",
                 atol=(1e-4 if f32 else 1e-10) * scale)
    expect_close(new.log_vars, expected.log_vars.to(dtype),
                 what="new log_vars (the handout: vars_kd = (1/N_k) sum_n r_nk (x_nd - means_kd)^2 with the new "
                      "means; return its log)", atol=1e-3 if f32 else 1e-9)


@checks.add("gmm_em_step", "differentiable: gradients of the update match the reference's (log_weights: along "
            "directions that keep the weights normalised)", requires=EM_PIN)
@given(problem=em_problems(k=st.integers(1, 4), n=st.integers(24, 60)), seed=st.integers(0, 2**16))
def em_gradients_match_reference(student, problem, seed):
    """The handout asks to keep everything differentiable (unrolled EM): no .detach(), no torch.no_grad().

    The input log_weights are normalised (the handout), so an implementation
    may renormalise them; only their gradient along directions that keep
    them normalised is defined, and compared (``project_normalised``).
    """
    x, mix = problem.x, problem.start
    assume(float(reference_counts(x, mix).min()) >= 1.0)
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
            expect(grad is not None, f"no gradient of the {out_name} reached {name} (the handout: keep everything "
                                     "differentiable; no .detach(), no torch.no_grad(), no .item())")
            expected = leaf.grad
            if name == "log_weights":
                expect_tensor(grad, shape=t.shape, dtype=F64, what=f"d <cotangent, {out_name}> / d log_weights")
                grad, expected = project_normalised(grad, t), project_normalised(expected, t)
            expect_close(grad, expected, what=f"d <cotangent, {out_name}> / d {name}"
                         + (" (along directions that keep the weights normalised)" if name == "log_weights" else ""),
                         atol=1e-9 * (1 + float(expected.abs().max())))


@checks.add("gmm_em_step", "never decreases the log-likelihood (5 steps from random starts; one step with points 1e3 "
            "away from every component)", points=3, examples=15, requires=EM_PIN)
@given(problem=em_problems(), far=st.integers(0, 2), seed=st.integers(0, 2**16))
def em_monotone(student, problem, far, seed):
    x, mix = problem.x, problem.start
    if far:
        x = torch.cat([x, far_points(x, mix, far, seed)])
    assume(float(reference_counts(x, mix).min()) >= 1.0)
    n, d = x.shape
    ll = log_likelihood(x, mix)
    for step in range(1 if far else 5):  # a far point can end up alone in a component (variance 0) after a step
        new = em_outputs(student.gmm_em_step(x, *mix.astuple()), mix.k, d, F64)
        new_ll = log_likelihood(x, new)
        expect(new_ll >= ll - 1e-9 * (abs(ll) + 1),
               f"EM step {step + 1} decreased the log-likelihood sum_n log p(x_n) from {ll:.10g} to {new_ll:.10g} "
               f"(N = {n}, D = {d}, K = {mix.k}, {far} point(s) 1e3 away); EM never decreases it (the handout: "
               "E-step responsibilities in log space, then the closed-form M-step with the new means in the "
               "variances)")
        if not (abs(float(new.log_weights.logsumexp(0))) < 1e-9 and float(reference_counts(x, new).min()) >= 1.0):
            break  # left the well-conditioned domain (normalised weights, no empty component): stop here
        mix, ll = new, new_ll

