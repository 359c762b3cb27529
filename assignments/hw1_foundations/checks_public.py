"""hw1_foundations public checks: properties that need no reference implementation.

Students run these with `dgm-grade check foundations.py`. Nothing here
computes a graded function (students read this file): expected values come
from other quantities evaluated in the judge (the polar coordinates of the
Box-Muller output, the normal CDF that a density integrates to, the Gaussian
likelihood a maximum-likelihood estimate maximises, closed forms on special
data), or a check compares the student's function with itself (invariances,
broadcasting, finite differences, one component against several).

Value pins: each function's value on generic inputs is pinned by one public
check (``bm_polar``, ``mle_maximises_likelihood``, ``dglp_cdf``, ``gmm_cdf``)
and by the hidden comparison with the reference (``*_matches_reference``;
for gmm_em_step only that one). Every other check of a function tests a
consistency or a special case, which a degenerate answer (zeros, an echo, the
identity) can pass too, so it ``requires`` the pins: its points count only
when they pass.

Statistical checks state their false-fail probability; each draws from the
check's seed, so the same code always gets the same score.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor, expect_tuple, expect_unchanged, fail, tolerance
from grader.strategies import dtypes, gaussians, shapes, tensors
from grader.verify import expect_derivative

from .models import (
    F64,
    Mixture,
    diag_normal_terms,
    em_problems,
    mvn_log_likelihood,
    normal_cdf,
    random_mixture,
    simpson_cumulative,
    well_conditioned_data,
)

checks = Checks()

F32 = torch.float32
KS_P = 1e-8  # a Kolmogorov-Smirnov test of a true null fails with probability 1e-8
Z_FAIL = 6.0  # |N(0,1)| > 6 has probability 2e-9

# Value pins (check ids): the other checks of each function count only when these pass.
BM_PINS = ("bm_polar", "bm_matches_reference")
MLE_PINS = ("mle_maximises_likelihood", "mle_matches_reference")
DGLP_PINS = ("dglp_cdf", "dglp_matches_reference")
GMM_PINS = ("gmm_cdf", "gmm_matches_reference")
EM_PIN = ("em_matches_reference",)  # hidden: no public property pins an EM step on generic data
EM_PINS = (*EM_PIN, "em_one_component", "em_separated")  # and the public special cases, for `check`


def expect_close_scaled(got: torch.Tensor, expected: torch.Tensor, scale: torch.Tensor, *, what: str,
                        rel: float | None = None) -> None:
    """|got - expected| <= rtol |expected| + rel * scale, elementwise.

    ``scale`` is the size of the terms a sum cancels (a float32 result can
    only be as accurate as its largest term); ``rel`` defaults to the dtype's
    rtol / 100 (1e-5 for float32, 1e-8 for float64).
    """
    rtol, _ = tolerance(got.dtype)
    rel = rtol / 100 if rel is None else rel
    a, b, s = got.double(), expected.double(), scale.double().expand_as(expected)
    ok = (a - b).abs() <= rtol * b.abs() + rel * s
    if not bool(ok.all()):
        err = torch.where(ok, torch.zeros_like(a), (a - b).abs())
        idx = tuple(int(i) for i in torch.unravel_index(err.argmax(), err.shape)) if err.dim() else ()
        where = f" at index {list(idx)}" if idx else ""
        fail(f"{what}: {int((~ok).sum())} of {ok.numel()} values differ{where}\n"
             f"  got:      {a[idx].item():.10g}\n"
             f"  expected: {b[idx].item():.10g}\n"
             f"  (tolerance {rtol:g} relative + {rel * s[idx].item():.3g} absolute)")


def is_f32(dtype: torch.dtype) -> bool:
    return dtype == F32


def expect_own_gradients(student, fn: str, args: tuple[torch.Tensor, ...], names: tuple[str, ...], *,
                         cotangent: torch.Tensor, what: str, outputs: Callable[[Any, torch.Tensor], Any],
                         output: tuple[int, ...] = ()) -> None:
    """The gradients of <cotangent, output> (``output``: the index path of ``fn``'s output called ``what``)
    with respect to each of ``args`` (one dtype; called ``names``) are the derivative of ``fn``'s own values.

    The judge calls ``fn`` on the arguments in float64 and checks each gradient against central differences
    of ``fn``'s float64 values (``expect_derivative``; a difference quotient needs float64). Float32
    arguments are also called as they are: their gradients must equal those float64 gradients within
    float32 rounding, 1e-3 relative plus 1e-4 of the largest float64 gradient (rounding to float32 is
    6e-8 relative; the slack covers a few hundred roundings through logs, squares and sums).
    ``outputs(value, first argument)`` checks the form of the call's value.
    """
    wide = tuple(a.double() for a in args)  # float64 arguments are their own float64 copies
    r = student.call(fn, *wide, wrt=wide, output=output, cotangent=cotangent.double())
    outputs(r.value, wide[0])
    for t, name in zip(wide, names):
        expect(r.grad(t) is not None, f"no gradient of {what} reached {name} (the handout: keep everything "
                                      "differentiable; no .detach(), no .item(), no numpy)")
        expect_derivative(student, fn, wide, r, t, output=output, cotangent=cotangent.double(),
                          what=f"d <cotangent, {what}> / d {name} (the inputs in float64)")
    if args[0].dtype == F64:
        return
    narrow = student.call(fn, *args, wrt=args, output=output, cotangent=cotangent)
    outputs(narrow.value, args[0])
    for t, w, name in zip(args, wide, names):
        grad, expected = narrow.grad(t), r.grad(w)
        expect(grad is not None, f"no gradient of {what} reached {name} in {t.dtype} (the handout: keep everything "
                                 "differentiable; no .detach(), no .item(), no numpy)")
        expect_close(grad, expected.to(t.dtype), what=f"d <cotangent, {what}> / d {name} in {t.dtype} vs your "
                     "float64 gradient at the same point", atol=1e-4 * (1 + float(expected.abs().max())))


# ---------------------------------------------------------------------- box_muller


@dataclass(frozen=True)
class Uniforms:
    """The two arguments of box_muller, one shape and dtype."""

    u1: torch.Tensor
    u2: torch.Tensor

    def __repr__(self) -> str:
        return f"Uniforms(u1={self.u1!r}, u2={self.u2!r})"


@st.composite
def uniforms(draw, shape=shapes(), dtype=dtypes()) -> Uniforms:
    """(u1, u2) of one shape and dtype with values in (0, 1]: down to 1e-30, and exactly 1."""
    shape, dtype = draw(shape), draw(dtype)
    return Uniforms(draw(tensors(shape, dtype, low=1e-30, high=1.0)), draw(tensors(shape, dtype, low=1e-30, high=1.0)))


def bm_outputs(value, u1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z1, z2 = expect_tuple(value, 2, what="box_muller(u1, u2) (the handout: returns (z1, z2))")
    name = str(u1.dtype).removeprefix("torch.")
    return (expect_tensor(z1, shape=u1.shape, dtype=u1.dtype, what=f"z1 (the handout: each [...] like u1; {name})"),
            expect_tensor(z2, shape=u1.shape, dtype=u1.dtype, what=f"z2 (the handout: each [...] like u1; {name})"))


def expect_polar(z1: torch.Tensor, z2: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor, *, atol: torch.Tensor | float,
                 what: str) -> None:
    """(z1, z2) has radius sqrt(-2 ln u1) and angle 2 pi u2 (mod 2 pi), within ``atol`` in the plane.

    The radius error |r_got - r| and the arc error r |angle_got - angle|
    together bound the distance to the handout's point.
    """
    radius = (-2.0 * u1.double().log()).sqrt()
    got_radius = torch.hypot(z1.double(), z2.double())
    angle_error = torch.remainder(torch.atan2(z2.double(), z1.double()) - 2.0 * math.pi * u2.double() + math.pi,
                                  2.0 * math.pi) - math.pi
    arc = radius * angle_error.abs()
    atol = torch.as_tensor(atol, dtype=F64).expand_as(radius)
    for name, err, explain in (
        ("radius sqrt(z1^2 + z2^2)", (got_radius - radius).abs(), "r = sqrt(-2 ln u1)"),
        ("angle atan2(z2, z1)", arc, "the angle is 2 pi u2: z1 = r cos(2 pi u2), z2 = r sin(2 pi u2)"),
    ):
        bad = err > atol
        if bool(bad.any()):
            i = tuple(int(j) for j in bad.nonzero()[0])
            fail(f"{what}: the {name} is wrong at index {list(i)} (the handout: {explain})\n"
                 f"  u1 = {u1[i].item():.10g}, u2 = {u2[i].item():.10g}\n"
                 f"  got z1 = {z1[i].item():.10g}, z2 = {z2[i].item():.10g}: radius {got_radius[i].item():.10g}, "
                 f"angle {math.atan2(z2[i].item(), z1[i].item()):.10g}\n"
                 f"  expected radius {radius[i].item():.10g}, angle 2 pi u2 = "
                 f"{2 * math.pi * u2[i].item():.10g} (mod 2 pi)\n"
                 f"  (error {err[i].item():.3g} in the plane, tolerance {atol[i].item():.3g})")


@checks.add("box_muller", "polar form: z1^2 + z2^2 = -2 ln u1 and the angle of (z1, z2) is 2 pi u2; keeps shape, "
            "dtype and inputs", points=2)
@given(u=uniforms())
def bm_polar(student, u):
    r = student.call("box_muller", u.u1, u.u2, return_inputs=True)
    z1, z2 = bm_outputs(r.value, u.u1)
    # float32: 2 pi u2 is rounded (angle error ~ 4e-7, times the radius); float64: an epsilon
    # up to 1e-12 inside the square root is allowed (|z| <= 1e-6 where u1 = 1).
    radius = (-2.0 * u.u1.double().log()).sqrt()
    atol = 2e-5 * (1 + radius) if is_f32(u.u1.dtype) else 2e-6
    expect_polar(z1, z2, u.u1, u.u2, atol=atol, what="box_muller(u1, u2)")
    expect_unchanged(r, u.u1, u.u2)


@checks.add("box_muller", "edges: u1 = 1 gives radius 0 (z1 = z2 = 0); the smallest u1 gives finite values",
            requires=BM_PINS)
def bm_edges(student):
    for dtype in (F32, F64):
        tiny = torch.finfo(dtype).tiny
        u1 = torch.tensor([1.0, 1.0, 1.0, 1.0, tiny, tiny, tiny, 0.5], dtype=dtype)
        u2 = torch.tensor([0.25, 0.5, 1.0, 0.123, 1.0, 0.25, 0.5, 1.0], dtype=dtype)
        z1, z2 = bm_outputs(student.box_muller(u1, u2), u1)
        name = str(dtype).removeprefix("torch.")
        for z, what in ((z1, "z1"), (z2, "z2")):
            expect(bool((z[:4].abs() <= 1e-5).all()),
                   f"{what} in {name} with u1 = 1: got {z[:4].tolist()}, expected zeros (the handout: "
                   "r = sqrt(-2 ln u1) = 0 at u1 = 1; use ln u1, not ln(1 - u1))")
        expect_polar(z1[4:], z2[4:], u1[4:], u2[4:], atol=1e-4 if dtype == F32 else 1e-9,
                     what=f"box_muller in {name} for u1 = {tiny:g} (the smallest positive {name}) and 0.5")


@checks.add("box_muller", "differentiable: gradients with respect to u1 and u2 agree with finite differences of "
            "(z1, z2)", requires=BM_PINS)
@given(data=st.data(), shape=shapes(max_dims=2), dtype=dtypes())
def bm_gradients(student, data, shape, dtype):
    """u1 in [1e-3, 0.999]: away from 0 and 1, where the radius has unbounded slope."""
    u1 = data.draw(tensors(shape, dtype, low=1e-3, high=0.999), label="u1")
    u2 = data.draw(tensors(shape, dtype, low=1e-30, high=1.0), label="u2")
    cot = data.draw(tensors(shape, dtype, low=-2, high=2), label="cotangent")
    for out, name in ((0, "z1"), (1, "z2")):
        expect_own_gradients(student, "box_muller", (u1, u2), ("u1", "u2"), output=(out,), cotangent=cot, what=name,
                             outputs=bm_outputs)


@checks.add("box_muller", "uniform inputs give independent standard normals (KS and correlation tests)",
            requires=BM_PINS)
def bm_distribution(student):
    """200000 pairs of uniforms in (0, 1] drawn here (from the check's seed).

    Six Kolmogorov-Smirnov tests at p > 1e-8 (z1, z2, (z1 + z2)/sqrt 2 and
    (z1 - z2)/sqrt 2 against N(0, 1), z1^2 + z2^2 against chi-squared(2) =
    Exponential(mean 2), the angle atan2(z2, z1) against uniform), and two
    correlation tests at |r| < 6/sqrt(n) (z1 with z2, z1^2 with z2^2; 2e-9
    each): false-fail probability below 6e-8 + 4e-9 < 1e-7 in all.
    """
    from scipy import stats  # here, not at the top: importing it takes a second
    n = 200_000
    u1 = 1.0 - torch.rand(n, dtype=F64)
    u2 = 1.0 - torch.rand(n, dtype=F64)
    z1, z2 = bm_outputs(student.box_muller(u1, u2), u1)
    tests = (
        ("z1", z1, "norm", ()), ("z2", z2, "norm", ()),
        ("(z1 + z2) / sqrt(2)", (z1 + z2) / math.sqrt(2), "norm", ()),
        ("(z1 - z2) / sqrt(2)", (z1 - z2) / math.sqrt(2), "norm", ()),
        ("z1^2 + z2^2", z1**2 + z2**2, "expon", (0.0, 2.0)),
        ("atan2(z2, z1) / (2 pi) mod 1", torch.remainder(torch.atan2(z2, z1) / (2 * math.pi), 1.0), "uniform", ()),
    )
    for name, values, dist, args in tests:
        result = stats.kstest(values.numpy(), dist, args=args)
        expect(result.pvalue > KS_P,
               f"{name} over {n} uniform pairs does not follow {dist}{args or ''}: mean {values.mean().item():.4f}, "
               f"std {values.std().item():.4f}, Kolmogorov-Smirnov p = {result.pvalue:.2g} (the handout: "
               "independent N(0, 1) when u1, u2 are independent Uniform(0, 1])")
    bound = Z_FAIL / math.sqrt(n)
    for name, a, b in (("z1 and z2", z1, z2), ("z1^2 and z2^2", z1**2, z2**2)):
        r = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
        expect(abs(r) < bound, f"{name} are correlated (r = {r:.4f}); the handout: z1 and z2 are independent")


# ---------------------------------------------------------------------- gaussian_mle


@st.composite
def mle_data(draw, n=st.integers(2, 40), d=st.integers(1, 4)):
    """[N, D] float64 data with N >= D + 2 and a well-conditioned sample covariance."""
    d = draw(d)
    n = max(draw(n), d + 2)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    return well_conditioned_data(gen, n, d)


def mle_outputs(value, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    mean, cov = expect_tuple(value, 2, what="gaussian_mle(x) (the handout: returns (mean, cov))")
    return (expect_tensor(mean, shape=(d,), dtype=dtype, what="mean (the handout: mean: [D])"),
            expect_tensor(cov, shape=(d, d), dtype=dtype, what="cov (the handout: cov: [D, D])"))


@checks.add("gaussian_mle", "maximises the likelihood: no perturbation of the mean or covariance increases it",
            points=2, examples=20)
@given(x=mle_data())
def mle_maximises_likelihood(student, x):
    n, d = x.shape
    mean, cov = mle_outputs(student.gaussian_mle(x), d, F64)
    expect_close(cov, cov.T, what="cov vs cov.T (a covariance is symmetric)")
    cov = 0.5 * (cov + cov.T)
    eig = torch.linalg.eigvalsh(cov)
    expect(float(eig.min()) > 0, f"cov must be positive definite for this full-rank data (N = {n} > D = {d}); "
                                 f"its smallest eigenvalue is {float(eig.min()):.3g}")
    base = float(mvn_log_likelihood(x, mean, cov))
    slack = 1e-9 * (abs(base) + 1)
    gen = torch.Generator().manual_seed(n * 10 + d)
    chol = torch.linalg.cholesky(cov)
    perturbed: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    for c in ((n - 1) / n, n / (n - 1), 0.9, 1.1, 1 - 1e-3, 1 + 1e-3):
        perturbed.append((f"cov scaled by {c:.6g}", mean, c * cov))
    for scale in (1e-3, 0.1, 1.0):
        delta = scale * chol @ torch.randn(d, generator=gen, dtype=F64)
        perturbed.append((f"mean moved by {scale:g} standard deviations", mean + delta, cov))
    for scale in (1e-3, 0.1):
        b = torch.randn(d, d, generator=gen, dtype=F64)
        e = chol @ (b + b.T) @ chol.T  # a symmetric direction in the covariance's own scale
        for sign in (1, -1):
            step = sign * scale / (1 + float(torch.linalg.matrix_norm(b + b.T, ord=2)))  # keeps cov + step e PD
            perturbed.append((f"cov + {step:.3g} * (a random symmetric matrix)", mean, cov + step * e))
    lls = mvn_log_likelihood(x, torch.stack([m for _, m, _ in perturbed]), torch.stack([c for _, _, c in perturbed]))
    for (what, _, _), ll in zip(perturbed, lls.tolist()):
        expect(ll <= base + slack,
               f"the maximum-likelihood estimate maximises sum_n log N(x_n; mean, cov); with {what} the "
               f"log-likelihood rises from {base:.10g} to {ll:.10g} (N = {n}, D = {d}). The handout: "
               "mean = (1/N) sum_n x_n, cov = (1/N) sum_n (x_n - mean)(x_n - mean)^T (divide by N, not N - 1)")


@checks.add("gaussian_mle", "differentiable: gradients of mean and cov with respect to x agree with finite "
            "differences of (mean, cov)", requires=MLE_PINS)
@given(x=mle_data(n=st.integers(2, 20)), dtype=dtypes(), seed=st.integers(0, 2**16))
def mle_gradients(student, x, dtype, seed):
    d = x.shape[1]
    gen = torch.Generator().manual_seed(seed)
    xt = x.to(dtype)
    for out, name, shape in ((0, "mean", (d,)), (1, "cov", (d, d))):
        cot = torch.randn(shape, generator=gen, dtype=F64).to(dtype)
        expect_own_gradients(student, "gaussian_mle", (xt,), ("x",), output=(out,), cotangent=cot, what=name,
                             outputs=lambda value, x: mle_outputs(value, d, x.dtype))


@checks.add("gaussian_mle", "affine equivariance: data x A^T + b gives mean A mean + b and cov A cov A^T; "
            "leaves x unchanged", requires=MLE_PINS)
@given(x=mle_data(), dtype=dtypes(), seed=st.integers(0, 2**16))
def mle_affine(student, x, dtype, seed):
    n, d = x.shape
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=F64) + 2 * torch.eye(d, dtype=F64)
    b = 10 * torch.randn(d, generator=gen, dtype=F64)
    x0, x1 = x.to(dtype), (x @ a.T + b).to(dtype)
    r = student.call("gaussian_mle", x0, return_inputs=True)
    expect_unchanged(r, x0)
    mean0, cov0 = mle_outputs(r.value, d, dtype)
    mean1, cov1 = mle_outputs(student.gaussian_mle(x1), d, dtype)
    exp_mean = a @ mean0.double() + b
    exp_cov = a @ cov0.double() @ a.T
    f32 = is_f32(dtype)
    expect_close(mean1, exp_mean.to(dtype), what="mean of x A^T + b vs A mean(x) + b (the mean is linear in the data)",
                 atol=1e-4 * float(x1.double().abs().max()) if f32 else 1e-9)
    expect_close(cov1, exp_cov.to(dtype),
                 what="cov of x A^T + b vs A cov(x) A^T (cov is built from x_n - mean: shifting the data must not "
                      "change it)",
                 atol=(1e-4 if f32 else 1e-10) * float(exp_cov.abs().max()))


@checks.add("gaussian_mle", "two observations x1, x2: mean (x1 + x2) / 2 and cov (x1 - x2)(x1 - x2)^T / 4",
            requires=MLE_PINS)
@given(data=st.data(), d=st.integers(1, 5), dtype=dtypes())
def mle_two_points(student, data, d, dtype):
    x = data.draw(tensors((2, d), dtype, low=-100, high=100), label="x")
    mean, cov = mle_outputs(student.gaussian_mle(x), d, dtype)
    xd = x.double()
    diff = xd[0] - xd[1]
    scale = float(xd.abs().max()) + 1
    f32 = is_f32(dtype)
    expect_close(mean, ((xd[0] + xd[1]) / 2).to(dtype), what="mean", atol=(1e-5 if f32 else 1e-12) * scale)
    expect_close(cov, (torch.outer(diff, diff) / 4).to(dtype),
                 what="cov (the handout: divide by N = 2, not N - 1 = 1)",
                 atol=(1e-4 if f32 else 1e-11) * scale**2)


# ---------------------------------------------------------------------- diag_gaussian_log_prob


DGLP_FORMULA = ("log N(x; mean, diag(exp(log_var))) = -0.5 * sum_d [ log(2 pi) + log_var_d + "
                "(x_d - mean_d)^2 / exp(log_var_d) ]")


@checks.add("diag_gaussian_log_prob", "a density: exp(log N) integrates to the Gaussian CDF "
            "prod_d Phi((x_d - mean_d) / std_d) (Simpson's rule over +-10 std, D = 1 and 2)", examples=10)
@given(data=st.data(), batch_shape=shapes(min_dims=0, max_dims=1, max_side=3), d=st.integers(1, 2), dtype=dtypes())
def dglp_cdf(student, data, batch_shape, d, dtype):
    """The integral of exp(log N) over the box [mean - 10 std, u] for grid points u, against Phi.

    Simpson's rule with 400 intervals over +-10 standard deviations per dim:
    error below 3e-8 for the reference (float64; 1e-6 in float32, where the
    grid points x = mean + std z are rounded), so the tolerance 1e-6 (float64)
    or 1e-4 (float32) leaves 30 times that.
    """
    g = data.draw(gaussians((*batch_shape, d), F64, mean_bound=10.0, log_var_range=(-6.0, 6.0)), label="gaussian")
    points = 401
    axis = torch.linspace(-10.0, 10.0, points, dtype=F64)
    h = 20.0 / (points - 1)
    z = axis[:, None] if d == 1 else torch.cartesian_prod(axis, axis)  # [G^D, D]
    std = (0.5 * g.log_var).exp()
    x = g.mean[..., None, :] + std[..., None, :] * z  # [*batch, G^D, D]
    mean, log_var = g.mean[..., None, :].expand_as(x).clone(), g.log_var[..., None, :].expand_as(x).clone()
    got = expect_tensor(student.diag_gaussian_log_prob(x.to(dtype), mean.to(dtype), log_var.to(dtype)),
                        shape=x.shape[:-1], dtype=dtype,
                        what=f"log-density of {list(x.shape)} points (the handout: returns [...], the last dim "
                             "summed out)")
    density = got.double().exp() * std.prod(-1)[..., None]  # per unit of z: p(x) dx = p(x) prod_d std_d dz
    integral = simpson_cumulative(density.reshape(*batch_shape, *(points,) * d), h, d)
    upper = axis[2::2]
    cdf = normal_cdf(upper) - normal_cdf(torch.tensor(-10.0, dtype=F64))
    expected = cdf if d == 1 else torch.outer(cdf, cdf)
    tol = 1e-4 if is_f32(dtype) else 1e-6
    err = (integral - expected).abs()
    if bool((err > tol).any()):
        i = tuple(int(j) for j in torch.unravel_index(err.argmax(), err.shape))
        where = i[len(batch_shape):]
        box = " x ".join(f"[mean_{k} - 10 std_{k}, mean_{k} + {upper[w].item():g} std_{k}]"
                         for k, w in enumerate(where))
        which = i[:len(batch_shape)]
        fail(f"exp(log-density) does not integrate to the Gaussian CDF: over {box} of the Gaussian "
             f"{f'at batch index {list(which)} ' if which else ''}with mean {g.mean[which].tolist()} and log_var "
             f"{g.log_var[which].tolist()} it integrates to {integral[i].item():.10g}, expected "
             f"{expected[where].item():.10g} (tolerance {tol:g}). The handout: {DGLP_FORMULA}")


@checks.add("diag_gaussian_log_prob", "location and scale: log N(x; mean, exp(log_var)) = log N((x - mean) / std; "
            "0, 1) - 0.5 sum_d log_var_d, for means up to 1e3 and log-variances in [-30, 30]; keeps dtype and "
            "inputs", requires=DGLP_PINS)
@given(data=st.data(), batch_shape=shapes(min_dims=0, max_dims=2, max_side=4), d=st.integers(1, 6), dtype=dtypes())
def dglp_location_scale(student, data, batch_shape, d, dtype):
    shape = (*batch_shape, d)
    g = data.draw(gaussians(shape, dtype), label="gaussian")
    x = data.draw(tensors(shape, dtype, low=-1e3, high=1e3), label="x")
    r = student.call("diag_gaussian_log_prob", x, g.mean, g.log_var, return_inputs=True)
    got = expect_tensor(r.value, shape=batch_shape, dtype=dtype,
                        what="log N(x; mean, diag(exp(log_var))) (the handout: returns [...], the last dim summed out)")
    expect_unchanged(r, x, g.mean, g.log_var)
    z = (x.double() - g.mean.double()) * (-0.5 * g.log_var.double()).exp()
    zero = torch.zeros(shape, dtype=dtype)
    standard = expect_tensor(student.diag_gaussian_log_prob(z.to(dtype), zero, zero), shape=batch_shape, dtype=dtype,
                             what="log N(z; 0, 1) with z = (x - mean) / std")
    expect_close_scaled(got, standard.double() - 0.5 * g.log_var.double().sum(-1),
                        diag_normal_terms(x, g.mean, g.log_var),
                        what="log N(x; mean, exp(log_var)) vs log N((x - mean) / std; 0, 1) - 0.5 sum_d log_var_d "
                             f"(this follows from the handout's formula: {DGLP_FORMULA}; multiply by exp(-log_var) "
                             "rather than dividing by exp(log_var))")


def broadcast_variant(draw, full: tuple[int, ...], label: str) -> tuple[int, ...]:
    """``full`` with some leading dims dropped or set to 1 (the last dim kept)."""
    lead = list(full[:-1])
    lead = lead[draw(st.integers(0, len(lead)), label=f"leading dims dropped from {label}"):]
    lead = [1 if draw(st.booleans(), label=f"{label}: size 1 at dim {i}") else s for i, s in enumerate(lead)]
    return (*lead, full[-1])


@checks.add("diag_gaussian_log_prob", "broadcasts x, mean and log_var against each other (equals the call on "
            "tensors expanded to the broadcast shape)", requires=DGLP_PINS)
@given(data=st.data(), lead=shapes(min_dims=1, max_dims=3, max_side=4), d=st.integers(1, 5), dtype=dtypes())
def dglp_broadcasts(student, data, lead, d, dtype):
    full = (*lead, d)
    sx, sm, sv = (broadcast_variant(data.draw, full, name) for name in ("x", "mean", "log_var"))
    x = data.draw(tensors(sx, dtype, low=-20, high=20), label="x")
    mean = data.draw(tensors(sm, dtype, low=-20, high=20), label="mean")
    log_var = data.draw(tensors(sv, dtype, low=-5, high=5), label="log_var")
    shape = torch.broadcast_shapes(sx, sm, sv)
    shapes_text = f"x {list(sx)}, mean {list(sm)}, log_var {list(sv)}"
    got = expect_tensor(student.diag_gaussian_log_prob(x, mean, log_var), shape=shape[:-1], dtype=dtype,
                        what=f"log-density for {shapes_text} (the handout: mean and log_var are broadcastable against "
                             f"x, and the result has the broadcast leading shape {list(shape[:-1])})")
    expanded = [t.expand(shape).clone() for t in (x, mean, log_var)]
    full_call = expect_tensor(student.diag_gaussian_log_prob(*expanded), shape=shape[:-1], dtype=dtype,
                              what=f"log-density for x, mean and log_var expanded to {list(shape)}")
    expect_close_scaled(got, full_call.double(), diag_normal_terms(*expanded),
                        what=f"log-density for {shapes_text} vs the same call on tensors expanded to {list(shape)}")


def dglp_gradient_inputs(data, batch_shape: tuple, d: int, dtype: torch.dtype):
    """(x, Gaussian, cotangent) for the gradient checks: x, mean, log_var [*batch_shape, d] with moderate
    values, the cotangent [*batch_shape]."""
    shape = (*batch_shape, d)
    g = data.draw(gaussians(shape, dtype, mean_bound=10.0, log_var_range=(-4, 4)), label="gaussian")
    x = data.draw(tensors(shape, dtype, low=-10, high=10), label="x")
    return x, g, data.draw(tensors(batch_shape, dtype, low=-2, high=2), label="cotangent")


@checks.add("diag_gaussian_log_prob", "differentiable: gradients with respect to x, mean and log_var agree with "
            "finite differences of the log-density", requires=DGLP_PINS)
@given(data=st.data(), batch_shape=shapes(min_dims=0, max_dims=2, max_side=4), d=st.integers(1, 4), dtype=dtypes())
def dglp_gradients(student, data, batch_shape, d, dtype):
    x, g, cot = dglp_gradient_inputs(data, batch_shape, d, dtype)
    expect_own_gradients(student, "diag_gaussian_log_prob", (x, g.mean, g.log_var), ("x", "mean", "log_var"),
                         cotangent=cot, what="log N",
                         outputs=lambda value, x: expect_tensor(value, shape=batch_shape, dtype=x.dtype,
                                                                what="log-density"))


# ---------------------------------------------------------------------- gmm_log_likelihood


GMM_FORMULA = "log p(x_n) = log sum_k exp( log_weights_k + log N(x_n; means_k, diag(exp(log_vars_k))) )"
GMM_STABLE = ("the handout: reduce the [N, K] table with torch.logsumexp over k; never exponentiate the densities "
              "directly, or points far from every component give log(0) = -inf")


@st.composite
def mixtures(draw, k=st.integers(1, 4), d=st.integers(1, 3), *, spread: float = 3.0,
             log_var_range: tuple[float, float] = (-2.0, 2.0), mean_bound: float | None = None) -> Mixture:
    """A random float64 mixture (normalised log-weights), means clamped to +-mean_bound if given."""
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    mix = random_mixture(gen, draw(k), draw(d), spread=spread, log_var_range=log_var_range)
    if mean_bound is not None:
        mix = Mixture(mix.log_weights, mix.means.clamp(-mean_bound, mean_bound), mix.log_vars)
    return mix


@st.composite
def far_and_near_points(draw, means: torch.Tensor, n=st.integers(1, 8)) -> torch.Tensor:
    """[N, D] float64 points: some near the means, some 1e3 away from all of them."""
    n, d = draw(n), means.shape[1]
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    centre = means[torch.randint(0, means.shape[0], (n,), generator=gen)]
    direction = torch.nn.functional.normalize(torch.randn(n, d, generator=gen, dtype=F64), dim=-1)
    distance = torch.where(torch.rand(n, generator=gen) < 0.5, 1e3, 3.0 * torch.rand(n, generator=gen, dtype=F64))
    distance[0] = 1e3 + float(means.abs().max()) * 2  # at least one point far from every mean
    return centre + distance[:, None] * direction


def gmm_outputs(value, n: int, dtype: torch.dtype, what: str = "log p(x)") -> torch.Tensor:
    return expect_tensor(value, shape=(n,), dtype=dtype, what=f"{what} (the handout: returns [N] log p(x_n))")


def mixture_terms(x: torch.Tensor, mix: Mixture) -> torch.Tensor:
    """Size of the terms each log p(x_n) is made of (for float32 tolerances), ``[N]``."""
    return diag_normal_terms(x[:, None, :], mix.means[None], mix.log_vars[None]).amax(1) + mix.log_weights.abs().max()


def one_component(student, x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor, what: str) -> torch.Tensor:
    """The student's own log N(x; mean, var): gmm_log_likelihood with that component alone (log_weights = [0])."""
    value = student.gmm_log_likelihood(x, torch.zeros(1, dtype=x.dtype), mean[None], log_var[None])
    return gmm_outputs(value, len(x), x.dtype, what=f"{what}, with one component (log_weights = [0])")


@checks.add("gmm_log_likelihood", "a density: exp(log p) integrates to the mixture's CDF "
            "sum_k w_k prod_d Phi((x_d - mean_kd) / std_kd) (Simpson's rule on a grid, D = 1 and 2)", points=2,
            examples=8)
@given(mix=mixtures(k=st.integers(1, 4), d=st.integers(1, 2), spread=1.0, log_var_range=(-2.0, 1.0),
                    mean_bound=3.0), dtype=dtypes())
def gmm_cdf(student, mix, dtype):
    """Simpson's rule on [-20, 20] (1600 intervals) or [-14, 14]^2 (560 per dim), wider than every
    component (tails below 1e-10) and finer than every standard deviation (>= e^-1): error below 1e-6
    for the reference over 80 mixtures (5e-8 in 1-D), so the tolerance 1e-5 (float32: 1e-4) leaves 10
    times that."""
    d = mix.means.shape[1]
    lo, hi, points = (-20.0, 20.0, 1601) if d == 1 else (-14.0, 14.0, 561)
    axis = torch.linspace(lo, hi, points, dtype=F64)
    h = (hi - lo) / (points - 1)
    grid = axis[:, None] if d == 1 else torch.cartesian_prod(axis, axis)
    # -inf (a density of 0) far in the tails is allowed here: exp(-inf) = 0 is right to 1e-300. Computing
    # log(0) there is a stability bug the far-point checks charge, not a wrong density.
    ll = expect_tensor(student.gmm_log_likelihood(grid.to(dtype), *mix.to(dtype).astuple()), shape=(len(grid),),
                       dtype=dtype, finite=False,
                       what=f"log p(x) on a grid of {len(grid)} points (the handout: returns [N] log p(x_n))")
    bad = torch.isnan(ll) | (ll == math.inf)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        fail(f"log p(x) is {ll[i].item()} at x = {grid[i].tolist()} (a log-density is finite or -inf)")
    integral = simpson_cumulative(ll.double().exp().reshape((points,) * d), h, d)
    upper = axis[2::2]
    std = (0.5 * mix.log_vars).exp()
    per_dim = (normal_cdf((upper[:, None, None] - mix.means) / std)  # [M, K, D]: mass of component k below u in dim d
               - normal_cdf((lo - mix.means) / std))
    w = mix.log_weights.exp()
    expected = (per_dim[:, :, 0] @ w if d == 1
                else torch.einsum("k,ak,bk->ab", w, per_dim[:, :, 0], per_dim[:, :, 1]))
    tol = 1e-4 if is_f32(dtype) else 1e-5
    err = (integral - expected).abs()
    if bool((err > tol).any()):
        i = tuple(int(j) for j in torch.unravel_index(err.argmax(), err.shape))
        box = " x ".join(f"[{lo:g}, {upper[j].item():.4g}]" for j in i)
        fail(f"exp(log p(x)) does not integrate to the mixture's CDF: over {box} it integrates to "
             f"{integral[i].item():.10g}, expected sum_k w_k prod_d Phi_kd = {expected[i].item():.10g} "
             f"(tolerance {tol:g}; whole grid: {integral.reshape(-1)[-1].item():.10g}, expected "
             f"{expected.reshape(-1)[-1].item():.10g}). The handout: {GMM_FORMULA}")


@checks.add("gmm_log_likelihood", "identical components equal that one component alone, also 1e3 away from it "
            "(finite where a naive exp underflows)", points=2, requires=GMM_PINS)
@given(data=st.data(), k=st.integers(2, 5), d=st.integers(1, 3), dtype=dtypes())
def gmm_identical_components(student, data, k, d, dtype):
    g = data.draw(gaussians((d,), F64, mean_bound=10.0, log_var_range=(-3, 3)), label="component")
    logits = data.draw(tensors((k,), F64, low=-3, high=3), label="logits (log_weights = log_softmax(logits))")
    x = data.draw(far_and_near_points(g.mean[None]), label="x")
    log_w = torch.log_softmax(logits, 0)
    means, log_vars = g.mean.expand(k, d).clone(), g.log_var.expand(k, d).clone()
    got = gmm_outputs(student.gmm_log_likelihood(x.to(dtype), log_w.to(dtype), means.to(dtype), log_vars.to(dtype)),
                      len(x), dtype, what=f"log p(x) for {k} identical components ({GMM_STABLE})")
    alone = one_component(student, x.to(dtype), g.mean.to(dtype), g.log_var.to(dtype),
                          what=f"log p(x) for that component ({GMM_STABLE})")
    expect_close_scaled(got, alone.double(), diag_normal_terms(x, g.mean, g.log_var),
                        what=f"log p(x) for {k} identical components with weights summing to 1 vs that component alone "
                             f"(sum_k w_k N(x) = N(x); the handout: {GMM_FORMULA})")


@checks.add("gmm_log_likelihood", "lies between the best component's log w_k + log N_k and that plus log K, "
            "also 1e3 away from every mean; keeps the dtype and inputs", requires=GMM_PINS)
@given(data=st.data(), mix=mixtures(k=st.integers(2, 5)), dtype=dtypes())
def gmm_bounds(student, data, mix, dtype):
    """log N_k is the student's own: gmm_log_likelihood with component k alone."""
    x = data.draw(far_and_near_points(mix.means), label="x").to(dtype)
    mix = mix.to(dtype)
    r = student.call("gmm_log_likelihood", x, *mix.astuple(), return_inputs=True)
    got = gmm_outputs(r.value, len(x), dtype, what=f"log p(x) ({GMM_STABLE})")
    expect_unchanged(r, x, *mix.astuple())
    comps = torch.stack([one_component(student, x, mix.means[j], mix.log_vars[j], what=f"log N_{j}(x)").double()
                         for j in range(mix.k)], 1)
    best = (mix.log_weights.double() + comps).amax(1)
    terms = mixture_terms(x, mix)
    rtol, _ = tolerance(dtype)
    slack = rtol * best.abs() + rtol / 100 * terms
    low, high = best - slack, best + math.log(mix.k) + slack
    bad = (got.double() < low) | (got.double() > high)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        fail(f"log p(x_{i}) = {got[i].item():.10g} must lie in [max_k(log w_k + log N_k), that + log K] = "
             f"[{best[i].item():.10g}, {best[i].item() + math.log(mix.k):.10g}] (K = {mix.k}, x_{i} = {x[i].tolist()}; "
             f"log N_k is your gmm_log_likelihood with component k alone). The handout: {GMM_FORMULA}")


@checks.add("gmm_log_likelihood", "unchanged by permuting the components and by splitting one in two",
            requires=GMM_PINS)
@given(data=st.data(), mix=mixtures(), dtype=dtypes(), seed=st.integers(0, 2**16))
def gmm_permute_split(student, data, mix, dtype, seed):
    x = data.draw(far_and_near_points(mix.means), label="x")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(mix.k, generator=gen)
    j = int(torch.randint(0, mix.k, (1,), generator=gen))
    a = 0.1 + 0.8 * float(torch.rand(1, generator=gen))
    split_w = torch.cat([mix.log_weights, mix.log_weights[j:j + 1] + math.log(1 - a)])
    split_w[j] += math.log(a)
    variants = {
        "the original mixture": mix,
        f"components permuted by {perm.tolist()}": Mixture(mix.log_weights[perm], mix.means[perm], mix.log_vars[perm]),
        f"component {j} split into weights {a:.3f} w_{j} and {1 - a:.3f} w_{j}":
            Mixture(split_w, torch.cat([mix.means, mix.means[j:j + 1]]),
                    torch.cat([mix.log_vars, mix.log_vars[j:j + 1]])),
    }
    outputs = {}
    for name, m in variants.items():
        outputs[name] = gmm_outputs(student.gmm_log_likelihood(x.to(dtype), *m.to(dtype).astuple()), len(x), dtype,
                                    what=f"log p(x) for {name}")
    base = outputs.pop("the original mixture")
    for name, got in outputs.items():
        expect_close_scaled(got, base.double(), mixture_terms(x, mix),
                            what=f"log p(x) for {name} vs the original mixture (a mixture is a weighted sum "
                                 f"over components; the handout: {GMM_FORMULA})")


GMM_DIRECTIONS_SEED = 0x5EED_D1F6  # call-seed offset of gmm_gradients' directions


@checks.add("gmm_log_likelihood", "differentiable: gradients agree with finite differences of log p(x) "
            "(log_weights: along directions that keep the weights normalised)", requires=GMM_PINS)
@given(data=st.data(), mix=mixtures(log_var_range=(-1.0, 1.0)), dtype=dtypes(), n=st.integers(1, 6))
def gmm_gradients(student, data, mix, dtype, n):
    """Directional derivatives <grad, v> against central differences of the student's own float64 values
    (step 1e-5: error below 1e-8 relative). The handout says log_weights are normalised, so log_weights move
    along the curve log_softmax(log_weights + t v), whose tangent v - sum_k w_k v_k keeps them normalised: an
    implementation that renormalises (log_softmax) has the same derivative there."""
    d = mix.means.shape[1]
    x = data.draw(tensors((n, d), F64, low=-6, high=6), label="x")
    cot = data.draw(tensors((n,), F64, low=-2, high=2), label="cotangent")
    base = [x, *mix.astuple()]
    names = ("x", "log_weights", "means", "log_vars")
    args = [t.to(dtype) for t in base]
    r = student.call("gmm_log_likelihood", *args, wrt=tuple(args), cotangent=cot.to(dtype))
    gmm_outputs(r.value, n, dtype)
    # directions from the keyed call seed, drawn after the reply: the worker cannot know them when it reports
    gen = torch.Generator().manual_seed(student._call_seed(GMM_DIRECTIONS_SEED) % 2**63)
    directions = [torch.randn(t.shape, generator=gen, dtype=F64) for t in base]
    w = mix.log_weights.exp()
    directions[1] = directions[1] - (w * directions[1]).sum()  # tangent to the normalised weights
    step = 1e-5
    for i, (t, name) in enumerate(zip(args, names)):
        grad = r.grad(t)
        expect(grad is not None, f"no gradient reached {name} (the handout: keep everything differentiable; no "
                                 ".detach(), no .item())")
        expect_tensor(grad, shape=t.shape, what=f"d log p(x) / d {name}")
        values = []
        for sign in (1.0, -1.0):
            moved = list(base)
            if i == 1:  # stay normalised: log_softmax(log_weights + t v) has tangent v - (w . v) = v at t = 0
                moved[1] = torch.log_softmax(base[1] + sign * step * directions[1], 0)
            else:
                moved[i] = base[i] + sign * step * directions[i]
            values.append(gmm_outputs(student.gmm_log_likelihood(*moved), n, F64, what="log p(x) (float64)").double())
        fd = float((cot * (values[0] - values[1])).sum()) / (2 * step)
        contributions = grad.double() * directions[i]
        ad = float(contributions.sum())
        scale = 1.0 + float(contributions.abs().sum()) + abs(fd)
        tol = (1e-3 if is_f32(dtype) else 1e-6) * scale
        expect(abs(ad - fd) <= tol,
               f"d <cotangent, log p(x)> / d {name} along a random direction{' that keeps the weights normalised' if i == 1 else ''}: "
               f"your gradient gives {ad:.10g}, finite differences of your log p(x) give {fd:.10g} (tolerance "
               f"{tol:.3g}). Keep the computation in torch (no .detach(), no .item(), no numpy)")


# ---------------------------------------------------------------------- gmm_em_step


def em_outputs(value, k: int, d: int, dtype: torch.dtype, note: str = "") -> Mixture:
    lw, means, lv = expect_tuple(value, 3, what="gmm_em_step(...) (the handout: returns (log_weights, means, log_vars))")
    shapes_text = f"the handout: shapes [K], [K, D], [K, D]{note}"
    return Mixture(expect_tensor(lw, shape=(k,), dtype=dtype, what=f"new log_weights ({shapes_text})"),
                   expect_tensor(means, shape=(k, d), dtype=dtype, what=f"new means ({shapes_text})"),
                   expect_tensor(lv, shape=(k, d), dtype=dtype, what=f"new log_vars ({shapes_text})"))


def expect_normalised(mix: Mixture, dtype: torch.dtype, x: torch.Tensor, start: Mixture) -> None:
    """The new log_weights sum to 1 up to rounding: ``1e-5`` (float32) or ``1e-12`` (float64), plus 16 eps
    times the mean size of the log-joint terms of the E-step (``mixture_terms`` of ``x [N, D]`` under the
    ``start`` mixture). The handout's ``log r = log_joint - logsumexp(log_joint)`` rounds each log r of a
    point 1e3 away by about eps x its |log_joint| (~3e4 in float32: 2e-3), so sum_k N_k = N within
    about eps x sum_n terms_n / 2; 16 eps is 30 times that (6,000 float32 draws of three E-step styles
    reached 2% of this tolerance)."""
    total = float(mix.log_weights.double().logsumexp(0))
    eps = torch.finfo(dtype).eps
    rounding = 16 * eps * float(mixture_terms(x, start).mean())
    expect(abs(total) <= (1e-5 if is_f32(dtype) else 1e-12) + rounding,
           f"new log_weights must be normalised (the handout: 'the new log_weights are normalised'): "
           f"logsumexp(log_weights) = {total:.3g}, expected 0 (weights_k = N_k / N; got weights "
           f"{mix.log_weights.double().exp().tolist()})")


@checks.add("gmm_em_step", "returns normalised log_weights, keeps shapes and dtype, leaves inputs unchanged",
            requires=EM_PINS)
@given(problem=em_problems(), dtype=dtypes())
def em_shapes_normalised(student, problem, dtype):
    x, mix = problem.x.to(dtype), problem.start.to(dtype)
    r = student.call("gmm_em_step", x, *mix.astuple(), return_inputs=True)
    new = em_outputs(r.value, mix.k, x.shape[1], dtype)
    expect_normalised(new, dtype, problem.x, problem.start)
    expect_unchanged(r, x, *mix.astuple())


@checks.add("gmm_em_step", "one component: one step gives the sample mean and the divide-by-N variance per dim",
            requires=EM_PIN)
@given(data=st.data(), n=st.integers(2, 50), d=st.integers(1, 4), dtype=dtypes())
def em_one_component(student, data, n, d, dtype):
    x = data.draw(tensors((n, d), dtype, low=-20, high=20), label="x")
    xd = x.double()
    var = ((xd - xd.mean(0)) ** 2).mean(0)
    assume(float(var.min()) > 1e-2)
    start = data.draw(mixtures(k=st.just(1), d=st.just(d)), label="start (log_weights set to [0])").to(dtype)
    start = Mixture(torch.zeros(1, dtype=dtype), start.means, start.log_vars)
    new = em_outputs(student.gmm_em_step(x, *start.astuple()), 1, d, dtype)
    f32 = is_f32(dtype)
    expect_close(new.log_weights, torch.zeros(1, dtype=dtype),
                 what="new log_weights (one component: every r_n1 = 1, weights_1 = N_1 / N = 1, log 1 = 0)",
                 atol=1e-6 if f32 else 1e-12)
    expect_close(new.means, xd.mean(0, keepdim=True).to(dtype),
                 what="new means (one component: means_1 = (1/N) sum_n x_n, the sample mean)",
                 atol=1e-4 if f32 else 1e-10)
    expect_close(new.log_vars, var.log()[None].to(dtype),
                 what="new log_vars (the handout: vars_kd = (1/N_k) sum_n r_nk (x_nd - means_kd)^2 with the NEW "
                      "means; return its log)",
                 atol=1e-3 if f32 else 1e-9)


@checks.add("gmm_em_step", "well-separated clusters: one step gives each cluster's fraction, mean and variance",
            points=2, requires=EM_PIN)
@given(k=st.integers(2, 4), d=st.integers(1, 3), dtype=dtypes(), seed=st.integers(0, 2**32 - 1))
def em_separated(student, k, d, dtype, seed):
    """Clusters 100 apart with unit spread: every responsibility is exactly 0 or 1 (exp(-1800) underflows)."""
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(3, 30, (k,), generator=gen)
    centres = 100.0 * torch.arange(k, dtype=F64)[:, None] * torch.ones(d, dtype=F64)
    parts = [centres[j] + torch.randn(int(sizes[j]), d, generator=gen, dtype=F64) for j in range(k)]
    x = torch.cat(parts)
    x = x[torch.randperm(len(x), generator=gen)]
    start = Mixture(torch.log_softmax(0.5 * torch.randn(k, generator=gen, dtype=F64), 0),
                    centres + 0.5 * torch.randn(k, d, generator=gen, dtype=F64),
                    torch.rand(k, d, generator=gen, dtype=F64) * 2 - 1)
    new = em_outputs(student.gmm_em_step(x.to(dtype), *start.to(dtype).astuple()), k, d, dtype)
    frac = torch.tensor([len(p) for p in parts], dtype=F64) / len(x)
    means = torch.stack([p.mean(0) for p in parts])
    var = torch.stack([((p - p.mean(0)) ** 2).mean(0) for p in parts])
    f32 = is_f32(dtype)
    expect_close(new.log_weights, frac.log().to(dtype),
                 what="new log_weights (the handout: weights_k = N_k / N, here log(cluster size / N))",
                 atol=1e-5 if f32 else 1e-12)
    expect_close(new.means, means.to(dtype),
                 what="new means (the handout: means_k = (1/N_k) sum_n r_nk x_n, here each cluster's mean)",
                 atol=1e-3 if f32 else 1e-9)
    expect_close(new.log_vars, var.log().to(dtype),
                 what="new log_vars (the handout: vars_kd = (1/N_k) sum_n r_nk (x_nd - means_kd)^2, here the log of "
                      "each cluster's per-dim variance around its new mean, dividing by its size N_k)",
                 atol=2e-3 if f32 else 1e-9)


@checks.add("gmm_em_step", "equivariant: relabelling the components, reordering the data and rescaling/shifting "
            "each dim of the data transform the update the same way", requires=EM_PINS)
@given(problem=em_problems(), dtype=dtypes(), seed=st.integers(0, 2**16))
def em_equivariance(student, problem, dtype, seed):
    """EM uses the data only through the responsibilities and the weighted sums of the M-step: a
    permutation of the components permutes the update, the order of the data points does not matter, and
    x_nd -> a_d x_nd + b_d (with means a_d mean + b_d and log_vars + log a_d^2) leaves every responsibility
    as it was, so new means become a_d mean' + b_d and new log_vars log_vars' + log a_d^2."""
    x, mix = problem.x, problem.start
    n, d = x.shape
    gen = torch.Generator().manual_seed(seed)
    perm_k, perm_n = torch.randperm(mix.k, generator=gen), torch.randperm(n, generator=gen)
    sign = torch.where(torch.rand(d, generator=gen) < 0.5, -1.0, 1.0).double()
    a = sign * (2 * torch.rand(d, generator=gen, dtype=F64) - 1).exp()
    b = 10 * torch.randn(d, generator=gen, dtype=F64)
    log_a2 = (a**2).log()
    moved = Mixture(mix.log_weights[perm_k], mix.means[perm_k] * a + b, mix.log_vars[perm_k] + log_a2)
    new = em_outputs(student.gmm_em_step(x.to(dtype), *mix.to(dtype).astuple()), mix.k, d, dtype)
    new_moved = em_outputs(student.gmm_em_step((x[perm_n] * a + b).to(dtype), *moved.to(dtype).astuple()),
                           mix.k, d, dtype)
    f32 = is_f32(dtype)
    scale = float((x * a + b).abs().max()) + 1
    what = (f"for the data reordered, dims scaled by {a.tolist()} and shifted by {b.tolist()}, and the components "
            f"relabelled by {perm_k.tolist()}")
    expect_close(new_moved.log_weights, new.log_weights.double()[perm_k].to(dtype),
                 what=f"new log_weights {what} vs your update's log_weights relabelled", atol=2e-4 if f32 else 1e-10)
    expect_close(new_moved.means, (new.means.double()[perm_k] * a + b).to(dtype),
                 what=f"new means {what} vs a * (your update's means) + b, relabelled",
                 atol=(2e-4 if f32 else 1e-10) * scale)
    expect_close(new_moved.log_vars, (new.log_vars.double()[perm_k] + log_a2).to(dtype),
                 what=f"new log_vars {what} vs your update's log_vars + log a^2, relabelled",
                 atol=2e-3 if f32 else 1e-9)


@checks.add("gmm_em_step", "stable when some points are 1e3 away from every component: finite and normalised",
            requires=EM_PINS)
@given(problem=em_problems(), dtype=dtypes(), far=st.integers(1, 3), seed=st.integers(0, 2**16))
def em_far_points(student, problem, dtype, far, seed):
    x, mix = problem.x, problem.start
    x = torch.cat([x, far_points(x, mix, far, seed)])
    new = em_outputs(student.gmm_em_step(x.to(dtype), *mix.to(dtype).astuple()), mix.k, x.shape[1], dtype,
                     note=f"; {far} of the {len(x)} points are 1e3 away from every component: the handout's E-step "
                          "is 'in log space, stable for far-away points': log r = log_joint - logsumexp(log_joint)")
    expect_normalised(new, dtype, x, mix)


def far_points(x: torch.Tensor, mix: Mixture, far: int, seed: int) -> torch.Tensor:
    """``far`` points 1e3 + max|mean| away from the data's mean, in random directions."""
    gen = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(far, x.shape[1], generator=gen, dtype=F64), dim=-1)
    return x.mean(0) + (1e3 + float(mix.means.abs().max())) * direction

