"""hw1_foundations public checks: properties that need no reference implementation.

Students run these with `dgm-grade check foundations.py`. Expected values
come from definitions evaluated here in the judge (the handout's Box-Muller
formula, torch.distributions' densities, quadrature, closed forms on special
data), never from a reference solution.

Statistical checks state their false-fail probability; each draws from the
check's seed, so the same code always gets the same score.
"""
from __future__ import annotations

import math

import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor, expect_tuple, expect_unchanged, fail, tolerance
from grader.strategies import batch_and_event, dtypes, gaussians, shapes, tensors

from .models import (
    Mixture,
    component_table,
    diag_normal_log_prob,
    diag_normal_terms,
    em_problems,
    mvn_log_likelihood,
    random_mixture,
    responsibility_counts,
    well_conditioned_data,
)

checks = Checks()

F32, F64 = torch.float32, torch.float64
KS_P = 1e-8  # a Kolmogorov-Smirnov test of a true null fails with probability 1e-8
Z_FAIL = 6.0  # |N(0,1)| > 6 has probability 2e-9


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


# ---------------------------------------------------------------------- box_muller


@st.composite
def uniform_pairs(draw, shape=shapes(), dtype=dtypes()):
    """(u1, u2) of one shape and dtype with values in (0, 1]: down to 1e-30, and exactly 1."""
    shape, dtype = draw(shape), draw(dtype)
    return (draw(tensors(shape, dtype, low=1e-30, high=1.0)), draw(tensors(shape, dtype, low=1e-30, high=1.0)))


def box_muller_expected(u1: torch.Tensor, u2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The handout's formula in float64: (z1, z2, radius)."""
    radius = (-2.0 * u1.double().log()).sqrt()
    angle = 2.0 * math.pi * u2.double()
    return radius * angle.cos(), radius * angle.sin(), radius


@checks.add("box_muller", "exact for given uniforms: z1 = sqrt(-2 ln u1) cos(2 pi u2), z2 = ... sin(2 pi u2)",
            points=2)
@given(u=uniform_pairs())
def bm_exact(student, u):
    u1, u2 = u
    r = student.call("box_muller", u1, u2, return_inputs=True)
    z1, z2 = expect_tuple(r.value, 2, what="box_muller(u1, u2)")
    e1, e2, radius = box_muller_expected(u1, u2)
    # float32: 2 pi u2 is rounded (angle error ~ 4e-7, times the radius); float64: an epsilon
    # up to 1e-12 inside the square root is allowed (|z| <= 1e-6 where u1 = 1).
    atol = 2e-5 * (1 + float(radius.max())) if is_f32(u1.dtype) else 2e-6
    expect_close(z1, e1.to(u1.dtype), what="z1 (= sqrt(-2 ln u1) cos(2 pi u2))", atol=atol)
    expect_close(z2, e2.to(u1.dtype), what="z2 (= sqrt(-2 ln u1) sin(2 pi u2))", atol=atol)
    expect_unchanged(r, u1, u2)


@checks.add("box_muller", "edges: u1 = 1 gives radius 0 (z1 = z2 = 0); the smallest u1 gives finite values")
def bm_edges(student):
    for dtype in (F32, F64):
        tiny = torch.finfo(dtype).tiny
        u1 = torch.tensor([1.0, 1.0, 1.0, 1.0, tiny, tiny, tiny, 0.5], dtype=dtype)
        u2 = torch.tensor([0.25, 0.5, 1.0, 0.123, 1.0, 0.25, 0.5, 1.0], dtype=dtype)
        z1, z2 = expect_tuple(student.box_muller(u1, u2), 2, what="box_muller(u1, u2)")
        name = str(dtype).removeprefix("torch.")
        for z, what in ((z1, "z1"), (z2, "z2")):
            z = expect_tensor(z, shape=(8,), dtype=dtype, what=f"{what} in {name}")
            expect(bool((z[:4].abs() <= 1e-5).all()),
                   f"{what} in {name} with u1 = 1: got {z[:4].tolist()}, expected zeros (radius sqrt(-2 ln 1) = 0; "
                   "use ln u1, not ln(1 - u1))")
        e1, e2, _ = box_muller_expected(u1, u2)
        atol = 1e-4 if dtype == F32 else 1e-9
        expect_close(z1[4:], e1[4:].to(dtype), what=f"z1 in {name} for u1 = {tiny:g} and 0.5", atol=atol)
        expect_close(z2[4:], e2[4:].to(dtype), what=f"z2 in {name} for u1 = {tiny:g} and 0.5", atol=atol)


@checks.add("box_muller", "differentiable: exact gradients with respect to u1 and u2")
@given(data=st.data(), shape=shapes(max_dims=2), dtype=dtypes())
def bm_gradients(student, data, shape, dtype):
    u1 = data.draw(tensors(shape, dtype, low=1e-3, high=0.999))
    u2 = data.draw(tensors(shape, dtype, low=1e-30, high=1.0))
    cot = data.draw(tensors(shape, dtype, low=-2, high=2))
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
            expect(grad is not None, f"no gradient of {name} reached {arg} (keep everything in torch: no .detach(), "
                                     "no .item(), no numpy)")
            expect_close(grad, exp.to(dtype), what=f"d {name} / d {arg}",
                         atol=(1e-4 if is_f32(dtype) else 1e-9) * (1 + float(exp.abs().max())))


@checks.add("box_muller", "uniform inputs give independent standard normals (KS and correlation tests)", points=2)
def bm_distribution(student):
    """200000 pairs of uniforms in (0, 1] drawn here (from the check's seed).

    Six Kolmogorov-Smirnov tests at p > 1e-8 (z1, z2, (z1 + z2)/sqrt 2 and
    (z1 - z2)/sqrt 2 against N(0, 1), z1^2 + z2^2 against chi-squared(2) =
    Exponential(mean 2), the angle atan2(z2, z1) against uniform), and two
    correlation tests at |r| < 6/sqrt(n) (z1 with z2, z1^2 with z2^2; 2e-9
    each): false-fail probability below 6e-8 + 4e-9 < 1e-7 in all.
    """
    n = 200_000
    u1 = 1.0 - torch.rand(n, dtype=F64)
    u2 = 1.0 - torch.rand(n, dtype=F64)
    z1, z2 = expect_tuple(student.box_muller(u1, u2), 2, what="box_muller(u1, u2)")
    z1 = expect_tensor(z1, shape=(n,), dtype=F64, what="z1")
    z2 = expect_tensor(z2, shape=(n,), dtype=F64, what="z2")
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
               f"std {values.std().item():.4f}, Kolmogorov-Smirnov p = {result.pvalue:.2g}")
    bound = Z_FAIL / math.sqrt(n)
    for name, a, b in (("z1 and z2", z1, z2), ("z1^2 and z2^2", z1**2, z2**2)):
        r = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
        expect(abs(r) < bound, f"{name} are correlated (r = {r:.4f}); z1 and z2 must be independent")


# ---------------------------------------------------------------------- gaussian_mle


@st.composite
def mle_data(draw, n=st.integers(2, 40), d=st.integers(1, 4)):
    """[N, D] float64 data with N >= D + 2 and a well-conditioned sample covariance."""
    d = draw(d)
    n = max(draw(n), d + 2)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    return well_conditioned_data(gen, n, d)


def mle_outputs(value, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    mean, cov = expect_tuple(value, 2, what="gaussian_mle(x)")
    return (expect_tensor(mean, shape=(d,), dtype=dtype, what="mean"),
            expect_tensor(cov, shape=(d, d), dtype=dtype, what="cov"))


@checks.add("gaussian_mle", "maximises the likelihood: no perturbation of the mean or covariance increases it",
            points=3, examples=20)
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
               f"log-likelihood rises from {base:.10g} to {ll:.10g} (N = {n}, D = {d}). "
               "mean = average of the rows; cov divides by N, not N - 1")


@checks.add("gaussian_mle", "differentiable: exact gradients of mean and cov with respect to x")
@given(x=mle_data(n=st.integers(2, 20)), dtype=dtypes(), seed=st.integers(0, 2**16))
def mle_gradients(student, x, dtype, seed):
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
        expect(grad is not None, f"no gradient of {name} reached x (keep everything in torch: no .detach(), "
                                 "no .item(), no numpy)")
        expect_close(grad, expected.to(dtype), what=f"d <cotangent, {name}> / d x",
                     atol=(1e-4 if f32 else 1e-10) * (1 + float(expected.abs().max())))


@checks.add("gaussian_mle", "affine equivariance: data x A^T + b gives mean A mean + b and cov A cov A^T")
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
    expect_close(mean1, exp_mean.to(dtype), what="mean of x A^T + b vs A mean(x) + b",
                 atol=1e-4 * float(x1.double().abs().max()) if f32 else 1e-9)
    expect_close(cov1, exp_cov.to(dtype),
                 what="cov of x A^T + b vs A cov(x) A^T (shifting the data must not change cov)",
                 atol=(1e-4 if f32 else 1e-10) * float(exp_cov.abs().max()))


@checks.add("gaussian_mle", "two observations x1, x2: mean (x1 + x2) / 2 and cov (x1 - x2)(x1 - x2)^T / 4")
@given(data=st.data(), d=st.integers(1, 5), dtype=dtypes())
def mle_two_points(student, data, d, dtype):
    x = data.draw(tensors((2, d), dtype, low=-100, high=100))
    mean, cov = mle_outputs(student.gaussian_mle(x), d, dtype)
    xd = x.double()
    diff = xd[0] - xd[1]
    scale = float(xd.abs().max()) + 1
    f32 = is_f32(dtype)
    expect_close(mean, ((xd[0] + xd[1]) / 2).to(dtype), what="mean", atol=(1e-5 if f32 else 1e-12) * scale)
    expect_close(cov, (torch.outer(diff, diff) / 4).to(dtype),
                 what="cov (the maximum-likelihood covariance divides by N = 2, not N - 1 = 1)",
                 atol=(1e-4 if f32 else 1e-11) * scale**2)


# ---------------------------------------------------------------------- diag_gaussian_log_prob


@checks.add("diag_gaussian_log_prob", "equals torch.distributions.Normal's log_prob summed over the last dim, "
            "for means up to 1e3 and log-variances in [-30, 30]", points=2)
@given(data=st.data(), be=batch_and_event(), dtype=dtypes())
def dglp_values(student, data, be, dtype):
    shape = (*be[0], be[1])
    g = data.draw(gaussians(shape, dtype))
    x = data.draw(tensors(shape, dtype, low=-1e3, high=1e3))
    r = student.call("diag_gaussian_log_prob", x, g.mean, g.log_var, return_inputs=True)
    got = expect_tensor(r.value, shape=be[0], dtype=dtype, what="log N(x; mean, diag(exp(log_var)))")
    expected = diag_normal_log_prob(x, g.mean, g.log_var)
    expect_close_scaled(got, expected, diag_normal_terms(x, g.mean, g.log_var),
                        what="log N(x; mean, diag(exp(log_var))) vs Normal(mean, exp(0.5 log_var)).log_prob(x).sum(-1)")
    expect_unchanged(r, x, g.mean, g.log_var)


def broadcast_variant(draw, full: tuple[int, ...]) -> tuple[int, ...]:
    """``full`` with some leading dims dropped or set to 1 (the last dim kept)."""
    lead = list(full[:-1])
    lead = lead[draw(st.integers(0, len(lead))):]
    lead = [1 if draw(st.booleans()) else s for s in lead]
    return (*lead, full[-1])


@checks.add("diag_gaussian_log_prob", "broadcasts x, mean and log_var against each other")
@given(data=st.data(), lead=shapes(min_dims=1, max_dims=3, max_side=4), d=st.integers(1, 5), dtype=dtypes())
def dglp_broadcasts(student, data, lead, d, dtype):
    full = (*lead, d)
    sx, sm, sv = (broadcast_variant(data.draw, full) for _ in range(3))
    x = data.draw(tensors(sx, dtype, low=-20, high=20))
    mean = data.draw(tensors(sm, dtype, low=-20, high=20))
    log_var = data.draw(tensors(sv, dtype, low=-5, high=5))
    out_shape = torch.broadcast_shapes(sx, sm, sv)[:-1]
    got = expect_tensor(student.diag_gaussian_log_prob(x, mean, log_var), shape=out_shape, dtype=dtype,
                        what=f"log-density for x {list(sx)}, mean {list(sm)}, log_var {list(sv)} "
                             f"(expected the broadcast leading shape {list(out_shape)})")
    expect_close_scaled(got, diag_normal_log_prob(x, mean, log_var), diag_normal_terms(x, mean, log_var),
                        what=f"log-density for x {list(sx)}, mean {list(sm)}, log_var {list(sv)}")


@checks.add("diag_gaussian_log_prob", "exact gradients with respect to x, mean and log_var")
@given(data=st.data(), be=batch_and_event(max_event=4), dtype=dtypes())
def dglp_gradients(student, data, be, dtype):
    shape = (*be[0], be[1])
    g = data.draw(gaussians(shape, dtype, mean_bound=10.0, log_var_range=(-4, 4)))
    x = data.draw(tensors(shape, dtype, low=-10, high=10))
    cot = data.draw(tensors(be[0], dtype, low=-2, high=2))
    r = student.call("diag_gaussian_log_prob", x, g.mean, g.log_var, wrt=(x, g.mean, g.log_var), cotangent=cot)
    expect_tensor(r.value, shape=be[0], dtype=dtype, what="log-density")
    xd, md, vd, cd = x.double(), g.mean.double(), g.log_var.double(), cot.double()[..., None]
    z = (xd - md) * (-vd).exp()  # (x - mean) / var
    expected = {
        "x": -cd * z,
        "mean": cd * z,
        "log_var": cd * (-0.5 + 0.5 * (xd - md) ** 2 * (-vd).exp()),
    }
    scale = float(((xd - md) ** 2 * (-vd).exp()).abs().max() + z.abs().max() + 1) * 2
    for name, t in (("x", x), ("mean", g.mean), ("log_var", g.log_var)):
        grad = r.grad(t)
        expect(grad is not None, f"no gradient reached {name} (keep the computation in torch, no .detach() or .item())")
        expect_close(grad, expected[name].to(dtype), what=f"d log N / d {name}",
                     atol=(1e-5 if is_f32(dtype) else 1e-10) * scale)


# ---------------------------------------------------------------------- gmm_log_likelihood


@st.composite
def mixtures(draw, k=st.integers(1, 4), d=st.integers(1, 3), *, spread: float = 3.0,
             log_var_range: tuple[float, float] = (-2.0, 2.0)) -> Mixture:
    """A random float64 mixture (normalised log-weights)."""
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    return random_mixture(gen, draw(k), draw(d), spread=spread, log_var_range=log_var_range)


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
    return expect_tensor(value, shape=(n,), dtype=dtype, what=what)


def mixture_terms(x: torch.Tensor, mix: Mixture) -> torch.Tensor:
    """Size of the terms each log p(x_n) is made of (for float32 tolerances), ``[N]``."""
    return diag_normal_terms(x[:, None, :], mix.means[None], mix.log_vars[None]).amax(1) + mix.log_weights.abs().max()


@checks.add("gmm_log_likelihood", "one component: equals torch.distributions.Normal's log_prob summed over dims")
@given(data=st.data(), d=st.integers(1, 4), n=st.integers(1, 8), dtype=dtypes())
def gmm_one_component(student, data, d, n, dtype):
    g = data.draw(gaussians((1, d), dtype))
    x = data.draw(tensors((n, d), dtype, low=-1e3, high=1e3))
    log_w = torch.zeros(1, dtype=dtype)
    got = gmm_outputs(student.gmm_log_likelihood(x, log_w, g.mean, g.log_var), n, dtype)
    expect_close_scaled(got, diag_normal_log_prob(x, g.mean, g.log_var), diag_normal_terms(x, g.mean, g.log_var),
                        what="log p(x) with K = 1 (log_weights = [0])")


@checks.add("gmm_log_likelihood", "identical components equal that one component, also 1e3 away from it "
            "(finite where a naive exp underflows)", points=2)
@given(data=st.data(), k=st.integers(2, 5), d=st.integers(1, 3), dtype=dtypes())
def gmm_identical_components(student, data, k, d, dtype):
    g = data.draw(gaussians((d,), F64, mean_bound=10.0, log_var_range=(-3, 3)))
    logits = data.draw(tensors((k,), F64, low=-3, high=3))
    x = data.draw(far_and_near_points(g.mean[None]))
    log_w = torch.log_softmax(logits, 0)
    means, log_vars = g.mean.expand(k, d).clone(), g.log_var.expand(k, d).clone()
    got = gmm_outputs(student.gmm_log_likelihood(x.to(dtype), log_w.to(dtype), means.to(dtype), log_vars.to(dtype)),
                      len(x), dtype)
    x, means, log_vars = x.to(dtype), means.to(dtype), log_vars.to(dtype)
    expect_close_scaled(got, diag_normal_log_prob(x, g.mean.to(dtype), g.log_var.to(dtype)),
                        diag_normal_terms(x, g.mean.to(dtype), g.log_var.to(dtype)),
                        what=f"log p(x) for {k} identical components (= log N(x; mean, var); "
                             "reduce with torch.logsumexp, never exp then log)")


@checks.add("gmm_log_likelihood", "lies between the best component's log w_k + log N_k and that plus log K, "
            "also 1e3 away from every mean; keeps the dtype and inputs")
@given(data=st.data(), mix=mixtures(k=st.integers(2, 5)), dtype=dtypes())
def gmm_bounds(student, data, mix, dtype):
    x = data.draw(far_and_near_points(mix.means)).to(dtype)
    mix = mix.to(dtype)
    r = student.call("gmm_log_likelihood", x, *mix.astuple(), return_inputs=True)
    got = gmm_outputs(r.value, len(x), dtype)
    expect_unchanged(r, x, *mix.astuple())
    best = component_table(x, *mix.astuple()).amax(1)
    terms = mixture_terms(x, mix)
    rtol, _ = tolerance(dtype)
    slack = rtol * best.abs() + rtol / 100 * terms
    low, high = best - slack, best + math.log(mix.k) + slack
    bad = (got.double() < low) | (got.double() > high)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        fail(f"log p(x_{i}) = {got[i].item():.10g} must lie in [max_k(log w_k + log N_k), that + log K] = "
             f"[{best[i].item():.10g}, {best[i].item() + math.log(mix.k):.10g}] (K = {mix.k}, x_{i} = {x[i].tolist()})")


@checks.add("gmm_log_likelihood", "unchanged by permuting the components and by splitting one in two")
@given(data=st.data(), mix=mixtures(), dtype=dtypes(), seed=st.integers(0, 2**16))
def gmm_permute_split(student, data, mix, dtype, seed):
    x = data.draw(far_and_near_points(mix.means))
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
                                 "over components: log_weights + log N, then logsumexp over k)")


@checks.add("gmm_log_likelihood", "differentiable: gradients equal those of the definition "
            "(logsumexp_k of log w_k + log N_k)")
@given(data=st.data(), mix=mixtures(log_var_range=(-1.0, 1.0)), dtype=dtypes(), n=st.integers(1, 6))
def gmm_gradients(student, data, mix, dtype, n):
    x = data.draw(tensors((n, mix.means.shape[1]), F64, low=-6, high=6))
    cot = data.draw(tensors((n,), F64, low=-2, high=2))
    args = [x.to(dtype), *mix.to(dtype).astuple()]
    r = student.call("gmm_log_likelihood", *args, wrt=tuple(args), cotangent=cot.to(dtype))
    gmm_outputs(r.value, n, dtype)
    leaves = [t.double().requires_grad_() for t in args]
    (component_table(*leaves).logsumexp(1) * cot).sum().backward()
    for t, leaf, name in zip(args, leaves, ("x", "log_weights", "means", "log_vars")):
        grad = r.grad(t)
        expect(grad is not None, f"no gradient reached {name} (keep everything in torch: no .detach(), no .item())")
        expect_close(grad, leaf.grad.to(dtype), what=f"d log p(x) / d {name}",
                     atol=(1e-4 if is_f32(dtype) else 1e-10) * (1 + float(leaf.grad.abs().max())))


@checks.add("gmm_log_likelihood", "integrates to 1 (quadrature over a fine grid in 1-D and 2-D)", points=2)
def gmm_integrates_to_one(student):
    """Trapezoid rule on grids far wider than every component (tails below 1e-10) and
    finer than every standard deviation (error below 1e-12): deterministic, exact to 1e-6."""
    gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,))))
    for d, lo, hi, points in ((1, -20.0, 20.0, 40_001), (2, -14.0, 14.0, 561)):
        mix = random_mixture(gen, 3, d, spread=1.0, log_var_range=(-2.0, 1.0))
        mix = Mixture(mix.log_weights, mix.means.clamp(-3, 3), mix.log_vars)
        axis = torch.linspace(lo, hi, points, dtype=F64)
        h = (hi - lo) / (points - 1)
        grid = axis[:, None] if d == 1 else torch.cartesian_prod(axis, axis)
        ll = gmm_outputs(student.gmm_log_likelihood(grid, *mix.astuple()), len(grid), F64)
        edge = torch.ones(points, dtype=F64)
        edge[0] = edge[-1] = 0.5  # trapezoid weights
        weights = edge if d == 1 else torch.outer(edge, edge).flatten()
        integral = float((weights * ll.exp()).sum()) * h**d
        expect(abs(integral - 1) < 1e-6,
               f"a density integrates to 1; exp(log p(x)) of a {d}-D mixture integrates to {integral:.8g} "
               f"(K = 3, log_weights {mix.log_weights.tolist()}; "
               "check the constants: -0.5 (log 2 pi + log_var) per dim)")


# ---------------------------------------------------------------------- gmm_em_step


def em_outputs(value, k: int, d: int, dtype: torch.dtype) -> Mixture:
    lw, means, lv = expect_tuple(value, 3, what="gmm_em_step(...) (log_weights, means, log_vars)")
    return Mixture(expect_tensor(lw, shape=(k,), dtype=dtype, what="new log_weights"),
                   expect_tensor(means, shape=(k, d), dtype=dtype, what="new means"),
                   expect_tensor(lv, shape=(k, d), dtype=dtype, what="new log_vars"))


def mixture_ll(x: torch.Tensor, mix: Mixture) -> float:
    """sum_n log sum_k w_k N(x_n; ...), with the weights as given (not renormalised), float64."""
    return float(component_table(x.double(), *mix.to(F64).astuple()).logsumexp(1).sum())


def expect_normalised(mix: Mixture, dtype: torch.dtype) -> None:
    total = float(mix.log_weights.double().logsumexp(0))
    expect(abs(total) <= (1e-5 if is_f32(dtype) else 1e-12),
           f"new log_weights must be normalised: logsumexp(log_weights) = {total:.3g}, expected 0 "
           f"(weights_k = N_k / N; got weights {mix.log_weights.double().exp().tolist()})")


@checks.add("gmm_em_step", "never decreases the log-likelihood (5 steps from random starts)", points=3, examples=15)
@given(problem=em_problems())
def em_monotone(student, problem):
    x, mix = problem
    n, d = x.shape
    ll = mixture_ll(x, mix)
    for step in range(5):
        new = em_outputs(student.gmm_em_step(x, *mix.astuple()), mix.k, d, F64)
        new_ll = mixture_ll(x, new)
        expect(new_ll >= ll - 1e-9 * (abs(ll) + 1),
               f"EM step {step + 1} decreased the log-likelihood sum_n log p(x_n) from {ll:.10g} to {new_ll:.10g} "
               f"(N = {n}, D = {d}, K = {mix.k}); EM never decreases it (E-step responsibilities, then the "
               "closed-form M-step with the new means in the variances)")
        counts = responsibility_counts(x, *new.to(F64).astuple())
        if not (abs(float(new.log_weights.logsumexp(0))) < 1e-9 and float(counts.min()) >= 1.0):
            break  # left the well-conditioned domain (normalised weights, no empty component): stop here
        mix, ll = new, new_ll


@checks.add("gmm_em_step", "returns normalised log_weights, keeps shapes and dtype, leaves inputs unchanged")
@given(problem=em_problems(), dtype=dtypes())
def em_shapes_normalised(student, problem, dtype):
    x, mix = problem
    x, mix = x.to(dtype), mix.to(dtype)
    r = student.call("gmm_em_step", x, *mix.astuple(), return_inputs=True)
    new = em_outputs(r.value, mix.k, x.shape[1], dtype)
    expect_normalised(new, dtype)
    expect_unchanged(r, x, *mix.astuple())


@checks.add("gmm_em_step", "one component: one step gives the sample mean and the divide-by-N variance per dim")
@given(data=st.data(), n=st.integers(2, 50), d=st.integers(1, 4), dtype=dtypes())
def em_one_component(student, data, n, d, dtype):
    x = data.draw(tensors((n, d), dtype, low=-20, high=20))
    xd = x.double()
    var = ((xd - xd.mean(0)) ** 2).mean(0)
    assume(float(var.min()) > 1e-2)
    start = data.draw(mixtures(k=st.just(1), d=st.just(d))).to(dtype)
    start = Mixture(torch.zeros(1, dtype=dtype), start.means, start.log_vars)
    new = em_outputs(student.gmm_em_step(x, *start.astuple()), 1, d, dtype)
    f32 = is_f32(dtype)
    expect_close(new.log_weights, torch.zeros(1, dtype=dtype), what="new log_weights (one component: log 1 = 0)",
                 atol=1e-6 if f32 else 1e-12)
    expect_close(new.means, xd.mean(0, keepdim=True).to(dtype), what="new means (= the sample mean)",
                 atol=1e-4 if f32 else 1e-10)
    expect_close(new.log_vars, var.log()[None].to(dtype),
                 what="new log_vars (= log of the per-dim variance around the NEW mean, dividing by N)",
                 atol=1e-3 if f32 else 1e-9)


@checks.add("gmm_em_step", "well-separated clusters: one step gives each cluster's fraction, mean and variance",
            points=2)
@given(data=st.data(), k=st.integers(2, 4), d=st.integers(1, 3), dtype=dtypes(), seed=st.integers(0, 2**32 - 1))
def em_separated(student, data, k, d, dtype, seed):
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
    expect_close(new.log_weights, frac.log().to(dtype), what="new log_weights (= log(cluster size / N))",
                 atol=1e-5 if f32 else 1e-12)
    expect_close(new.means, means.to(dtype), what="new means (= each cluster's mean)", atol=1e-3 if f32 else 1e-9)
    expect_close(new.log_vars, var.log().to(dtype),
                 what="new log_vars (= log of each cluster's per-dim variance, dividing by its size N_k)",
                 atol=2e-3 if f32 else 1e-9)


@checks.add("gmm_em_step", "stable when some points are 1e3 away from every component: finite, normalised, "
            "log-likelihood does not decrease")
@given(problem=em_problems(), dtype=dtypes(), far=st.integers(1, 3), seed=st.integers(0, 2**16))
def em_far_points(student, problem, dtype, far, seed):
    x, mix = problem
    gen = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(far, x.shape[1], generator=gen, dtype=F64), dim=-1)
    x = torch.cat([x, x.mean(0) + (1e3 + float(mix.means.abs().max())) * direction])
    new = em_outputs(student.gmm_em_step(x.to(dtype), *mix.to(dtype).astuple()), mix.k, x.shape[1], dtype)
    expect_normalised(new, dtype)
    if not is_f32(dtype):  # float32 log-densities near -5e5 carry absolute errors ~0.03: finiteness only
        ll, new_ll = mixture_ll(x, mix), mixture_ll(x, new)
        expect(new_ll >= ll - 1e-9 * (abs(ll) + 1),
               f"with {far} point(s) 1e3 away, the EM step decreased the log-likelihood from {ll:.10g} to "
               f"{new_ll:.10g} (compute responsibilities in log space: log_joint - logsumexp(log_joint))")
