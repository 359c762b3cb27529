"""hw6_score public checks: properties that need no reference implementation.

Students run these with `dgm-grade check score.py`. No check here computes a
graded function's formula (students read this file): expected values come from
exact calculus for Gaussian data (the score of N(m, s^2) perturbed by N(0,
sigma^2) noise is -(x - m) / (s^2 + sigma^2); the DSM loss of a Gaussian score
has a closed-form expectation; Langevin dynamics and the VP-SDE samplers are
linear-Gaussian chains whose laws the judge propagates exactly), Monte-Carlo
identities (sliced = explicit score matching in expectation over v), the
VP-SDE's moment equations solved by quadrature, and central differences of the
student's own values. The definitions on generic inputs are pinned by the hidden
checks, which compare with the reference.

A check that tests consistency or a special case names the checks that pin its
function's value in ``requires``: its points count only when they pass.
Statistical checks state their false-fail probability; each uses a fixed seed,
so the same code always gets the same score.
"""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks, Fixture
from grader.compare import expect, expect_close, expect_tensor, expect_tuple, expect_unchanged
from grader.strategies import dtypes, shapes, tensors

from .models import (DEFAULT_BETAS, Z_FAIL, beta_of, built, citing, dsm_difference_moments, dsm_loss_moments,
                     dsm_residual_coeffs, gaussian_sample_problems, gaussian_score, gradient_matches_differences,
                     langevin_chain_law, mlp_energy, mlp_score, per_example, slack, vp_betas, vp_kernel_by_quadrature,
                     vp_sampler_law)

checks = Checks()

SIGMA_MIN, T_MIN = 1e-2, 1e-3  # the spec's domain: sigma >= 1e-2, t in [1e-3, 1]

# The value pins of each function: public ones here, hidden ones (compared with the reference) in checks_hidden.py.
DSM_PINS = ("dsm_expectation", "dsm_given_noise")
SSM_PINS = ("ssm_matches_explicit", "ssm_linear_exact")
VP_MARGINAL_PINS = ("vp_marginal_moments", "vp_marginal_matches_reference")
CD_PINS = ("cd_expectation", "cd_matches_reference")


def name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# Strategies: a batch [B, *event] with 1-3 event dims, the event's Gaussian, noise levels and times.
batch_shapes = st.tuples(st.integers(1, 5), shapes(min_dims=1, max_dims=3, max_side=4)).map(lambda s: (s[0], *s[1]))


@st.composite
def levels(draw, batch, dtype, low, high, allow_none=False):
    """A noise level or time: a float, a [B] tensor, or (allow_none) None."""
    kinds = ["float", "tensor"] + (["none"] if allow_none else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "float":
        return draw(st.floats(low, high))
    return draw(tensors((batch,), dtype, low=low, high=high))


def draw_gaussian_score(data, event, dtype, kind: str = "ve", **betas) -> Fixture:
    """score_fn: the exact score of N(mean, diag var) data (means in [-3, 3], variances in [0.1, 4]),
    perturbed by N(0, sigma^2) noise (kind "ve") or the VP kernel at t (kind "vp")."""
    mean = data.draw(tensors(event, dtype, low=-3, high=3), label="score_fn data mean")
    var = data.draw(tensors(event, dtype, low=0.1, high=4), label="score_fn data var")
    return gaussian_score(mean, var, kind, **betas)


# ---------------------------------------------------------------------- dsm_loss

# Gaussian data N(M, diag S2) in D = 4 dims.
M = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
S2 = torch.tensor([0.5, 1.0, 2.0, 0.25], dtype=torch.float64)


def gaussian_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = M + S2.sqrt() * torch.randn(n, 4, generator=gen, dtype=torch.float64)
    return x, torch.randn(n, 4, generator=gen, dtype=torch.float64)


@checks.add("dsm_loss", "with the true score of Gaussian data, has the closed-form expectation "
            "sum_d s^2 / (2 sigma^2 (s^2 + sigma^2)) (sigma a float, or [B] on image-shaped data)", points=2,
            requires=("dsm_given_noise",))
def dsm_expectation(student):
    """Data N(m, s^2 I), score -(x_tilde - m) / (s^2 + sigma^2): the residual per dim is
    N(0, c) with c = s^2 / (sigma^2 (s^2 + sigma^2)), so E loss = 0.5 sum_d c_d and the per-sample
    loss has variance 0.5 sum_d c_d^2. Three 6-sd z-tests on 20000 samples (sigma = 0.01, 0.7,
    and one sigma per example with the data shaped [B, 2, 2]); the mean of 80000 chi-square terms
    has skewness < 0.02, so the Edgeworth-corrected tail is < 3e-9 each: false-fail < 1e-8."""
    n = 20_000
    x, noise = gaussian_batch(n, 0)
    sigma_b = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(math.log(SIGMA_MIN), math.log(2.0),
                                                                     generator=torch.Generator().manual_seed(1)))
    for sigma in (SIGMA_MIN, 0.7, sigma_b):
        s = per_example(sigma, x)
        mean, var = dsm_loss_moments(*[c.expand(n, 4) for c in dsm_residual_coeffs(M, S2, M, S2, s)])
        if isinstance(sigma, float):
            label, args = f"sigma = {sigma:g}, x [{n}, 4]", (gaussian_score(M, S2), x, sigma, noise)
        else:  # one level per example, on [B, 2, 2] data: sigma must broadcast over both non-batch dims
            label = "sigma a tensor [B] in [0.01, 2], x [B, 2, 2]"
            args = (gaussian_score(M.reshape(2, 2), S2.reshape(2, 2)), x.reshape(n, 2, 2), sigma,
                    noise.reshape(n, 2, 2))
        with citing("dsm_loss", "conventions"):
            r = student.call("dsm_loss", *args, return_inputs=True)
            got = expect_tensor(r.value, shape=(), dtype=torch.float64, what=f"DSM loss ({label})").item()
            expect(abs(got - mean) <= Z_FAIL * math.sqrt(var),
                   f"DSM loss of the true score, {label}, over {n} samples of N(m, s^2 I): got {got:.6g}, expected "
                   f"E = sum_d s^2 / (2 sigma^2 (s^2 + sigma^2)) = {mean:.6g} ± {math.sqrt(var):.2g}")
            expect_unchanged(r, *[a for a in args[1:] if isinstance(a, torch.Tensor)])


@checks.add("dsm_loss", "minimised by the true score: perturbing the score's mean or variance raises the loss",
            points=2, requires=DSM_PINS)
def dsm_minimised_by_true_score(student):
    """For a Gaussian score with mean m' and variance v', the loss has the closed-form expectation
    0.5 sum_d [(s^2 + (m - m')^2) / w^2 + (1 / sigma - sigma / w)^2], w = v' + sigma^2, uniquely
    minimised at m' = m, v' = s^2. Each perturbed loss is z-tested against it (6 sd), and on the
    same samples the perturbed loss must exceed the true score's: the expected gap is at least
    10 sd of the gap (asserted below), so false-fail < 1e-8 in all."""
    n, sigma = 20_000, 0.5
    x, noise = gaussian_batch(n, 2)
    true = gaussian_score(M, S2)
    base = expect_tensor(student.dsm_loss(true, x, sigma, noise), shape=(), dtype=torch.float64).item()
    base_coeffs = dsm_residual_coeffs(M, S2, M, S2, torch.tensor(sigma))
    for label, m_f, v_f in (("mean + 0.5 s", M + 0.5 * S2.sqrt(), S2), ("variance x 1.5", M, 1.5 * S2),
                            ("variance x 0.6", M, 0.6 * S2)):
        got = expect_tensor(student.dsm_loss(gaussian_score(m_f, v_f), x, sigma, noise), shape=(),
                            dtype=torch.float64).item()
        coeffs = dsm_residual_coeffs(M, S2, m_f, v_f, torch.tensor(sigma))
        mean, var = dsm_loss_moments(*[c.expand(n, 4) for c in coeffs])
        gap, gap_var = dsm_difference_moments([c.expand(n, 4) for c in base_coeffs], [c.expand(n, 4) for c in coeffs])
        assert gap > 10 * math.sqrt(gap_var), "grader error: perturbation too small"
        with citing("dsm_loss"):
            expect(abs(got - mean) <= Z_FAIL * math.sqrt(var),
                   f"DSM loss with the score's {label}: got {got:.6g}, expected {mean:.6g} ± {math.sqrt(var):.2g}")
            expect(got > base, f"DSM loss with the score's {label} is {got:.6g}, not above the true score's "
                               f"{base:.6g}: the true (perturbed-data) score must minimise the loss")


@checks.add("dsm_loss", "differentiable: its gradient wrt the score's parameters is the derivative of its value",
            requires=DSM_PINS)
@given(data=st.data(), batch=st.integers(1, 5), dim=st.integers(1, 4))
def dsm_gradients(student, data, batch, dim):
    """An affine score s(x, _) = x A^T + b: the reported gradient wrt (A, b) must match central
    differences of the student's own values along a direction the worker cannot know
    (models.gradient_matches_differences)."""
    x = data.draw(tensors((batch, dim), torch.float64, low=-3, high=3), label="x")
    noise = data.draw(tensors((batch, dim), torch.float64, low=-3, high=3), label="noise")
    sigma = data.draw(levels(batch, torch.float64, 0.1, 3.0), label="sigma")
    A = data.draw(tensors((dim, dim), torch.float64, low=-2, high=2), label="score_fn A")
    b = data.draw(tensors((dim,), torch.float64, low=-2, high=2), label="score_fn b")
    fixture = Fixture("affine_score", {}, {"A": A, "b": b})
    with citing("dsm_grad", "conventions"):
        gradient_matches_differences(student, "dsm_loss", fixture, (x, sigma, noise), what="DSM loss")


# ---------------------------------------------------------------------- sliced_score_matching_loss


@checks.add("sliced_score_matching_loss", "equals explicit score matching mean_b [tr(ds/dx) + 0.5 |s|^2]: exactly "
            "when each x meets the projections +-sqrt(D) R e_i (R a random rotation), in expectation over v ~ N(0, I)",
            points=2, requires=("ssm_matches_reference",))
def ssm_matches_explicit(student):
    """Explicit score matching needs the Jacobians J of an MLP score, which the judge computes.
    (1) Exact: each of 300 points x appears 2D times, with v = +-sqrt(D) R_x e_i (R_x a random
    rotation); the mean over these v of v^T J v is tr J and of (v . s)^2 is |s|^2, so the loss
    over this batch equals explicit score matching on the 300 points (float64, rtol 1e-9).
    (2) Monte Carlo: 20000 points with v ~ N(0, I); the gap between the loss and explicit score
    matching on the same x is a mean of 20000 independent terms with mean 0, z-tested at 6 sd
    with its sample sd (skewness of the mean < 0.03): false-fail < 1e-8."""
    d = 3
    gen = torch.Generator().manual_seed(3)
    fixture = mlp_score(d, [16], torch.float64, gen)
    model = built(fixture)

    def explicit(x):
        with torch.no_grad():
            s = model(x, None)
        jac = torch.autograd.functional.jacobian(lambda z: model(z, None).sum(0), x)  # [D, n, D]: J_b = jac[:, b, :]
        return s, jac, torch.einsum("ibi->b", jac) + 0.5 * (s ** 2).sum(1)

    def loss(x, v, what):
        with citing("ssm", "conventions"):
            r = student.call("sliced_score_matching_loss", fixture, x, v, return_inputs=True)
            got = expect_tensor(r.value, shape=(), dtype=torch.float64, what=what).item()
            expect_unchanged(r, x, v)
        return got

    m = 300
    points = 1.5 * torch.randn(m, d, generator=gen, dtype=torch.float64)
    rotations, _ = torch.linalg.qr(torch.randn(m, d, d, generator=gen, dtype=torch.float64))
    v = math.sqrt(d) * torch.cat([rotations.transpose(1, 2), -rotations.transpose(1, 2)], dim=1)  # [m, 2D, D]
    x = points[:, None, :].expand(m, 2 * d, d).reshape(-1, d)
    got = loss(x, v.reshape(-1, d), f"sliced score matching loss ({m} points x {2 * d} projections)")
    target = float(explicit(points)[2].mean())
    with citing("ssm"):
        expect(abs(got - target) <= 1e-9 * (1 + abs(target)),
               f"sliced score matching over {m} points, each with the {2 * d} projections +-sqrt({d}) R e_i (R a "
               f"rotation): got {got:.12g}, explicit score matching mean_b [tr(ds/dx) + 0.5 |s|^2] = {target:.12g} "
               "(equal: the mean of v^T J v over these v is tr J, of (v . s)^2 is |s|^2)")

    n = 20_000
    x = 1.5 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    v = torch.randn(n, d, generator=gen, dtype=torch.float64)
    got = loss(x, v, "sliced score matching loss")
    s, jac, per_point = explicit(x)
    gap = torch.einsum("bi,ibj,bj->b", v, jac, v) + 0.5 * (v * s).sum(1) ** 2 - per_point  # E_v[gap] = 0
    se = float(gap.std()) / math.sqrt(n)
    target = float(per_point.mean())
    with citing("ssm"):
        expect(abs(got - target) <= Z_FAIL * se,
               f"sliced score matching over {n} points with Gaussian projections: got {got:.6g}, explicit score "
               f"matching mean_b [tr(ds/dx) + 0.5 |s|^2] = {target:.6g} ± {se:.2g}")


@checks.add("sliced_score_matching_loss",
            "differentiable: its gradient wrt the score's parameters is the derivative of its value (both terms)",
            points=2, requires=SSM_PINS)
@given(data=st.data(), batch=st.integers(1, 6), dim=st.integers(1, 4))
def ssm_gradients(student, data, batch, dim):
    """An affine score s(x) = x A^T + b: the reported gradient wrt (A, b) must match central
    differences of the student's own values along a direction the worker cannot know
    (models.gradient_matches_differences). Computing grad_x without create_graph=True keeps the
    value but drops the trace term's gradient."""
    A = data.draw(tensors((dim, dim), torch.float64, low=-2, high=2), label="score_fn A")
    b = data.draw(tensors((dim,), torch.float64, low=-2, high=2), label="score_fn b")
    x = data.draw(tensors((batch, dim), torch.float64, low=-2, high=2), label="x")
    v = data.draw(tensors((batch, dim), torch.float64, low=-2, high=2), label="v")
    fixture = Fixture("affine_score", {}, {"A": A, "b": b})
    with citing("ssm_grad", "conventions"):
        r = gradient_matches_differences(
            student, "sliced_score_matching_loss", fixture, (x, v), what="sliced score matching loss",
            hint=" (did you call torch.autograd.grad without create_graph=True? Then the "
                                      "v . grad_x(v . s) term has no gradient)")
        expect_unchanged(r, x, v)


# ---------------------------------------------------------------------- langevin_step


@checks.add("langevin_step", "a chain with the exact score of N(m, v), v = s^2 + sigma^2, settles at the discretised "
            "chain's law N(m, v / (1 - step / (2 v))) (two step sizes; sigma None or a float)", points=2,
            requires=("langevin_given_noise",))
def langevin_chain_stationary(student):
    """20000 chains of 100 steps in 3 dims with s^2 = 0.5, 1, 2, run in the worker with your
    langevin_step, from x0 = m + 3: once with step 0.5, sigma = None on x [B, 3], once with step
    0.2, sigma = 0.5 on x [B, 3, 1] (the score then is that of N(m, s^2 + sigma^2)). The chain is
    AR(1) with a = 1 - step / v; its exact 100-step law is tested per dim: a 6-sd z-test of the
    mean and a chi-square test of the variance (1e-9 per tail): false-fail < 4e-8 over both chains."""
    n, steps = 20_000, 100
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    var = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    for step, sigma, event in ((0.5, None, (3,)), (0.2, 0.5, (3, 1))):
        chain = Fixture("langevin_chain", {"n_steps": steps, "step_size": step, "sigma": sigma, "seed": 11},
                        {"mean": mean.reshape(event), "var": var.reshape(event)})
        x0 = (mean + 3.0).reshape(event).expand(n, *event).clone()
        label = f"step_size = {step}, sigma = {sigma}, x {[n, *event]}"
        with citing("langevin"):
            x = expect_tensor(student.call("langevin_step.chain", chain, x0).value, shape=(n, *event),
                              dtype=torch.float64, what=f"samples after {steps} Langevin steps ({label})")
            v = var + (sigma or 0.0) ** 2
            law_mean, law_var = langevin_chain_law(mean + 3.0, mean, v, step, steps)
            problems = gaussian_sample_problems(x.reshape(n, 3), law_mean, law_var)
            expect(not problems, f"{n} chains of {steps} steps ({label}) with the score of N(m, v), v = s^2 + "
                                 f"sigma^2 = {v.tolist()}: expected mean {[round(u, 4) for u in law_mean.tolist()]} "
                                 f"and variance {[round(u, 4) for u in law_var.tolist()]} (the exact law of the "
                                 "AR(1) chain x' = x - step (x - m) / v + sqrt(2 step) xi)\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------------- vp_sde_marginal


@checks.add("vp_sde_marginal", "solves the VP-SDE's moment equations dm/dt = -0.5 beta(t) m, dv/dt = beta(t) (1 - v) "
            "from (x0, 0): mean = m, std = sqrt(v) broadcastable, in x0's dtype", points=2)
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), t_dtype=st.sampled_from(["like x0", "float64"]),
       betas=vp_betas)
def vp_marginal_moments(student, data, shape, dtype, t_dtype, betas):
    """The kernel of dx = -0.5 beta x dt + sqrt(beta) dw is Gaussian with the mean and variance of
    those equations, computed by quadrature of beta (models.vp_kernel_by_quadrature)."""
    x0 = data.draw(tensors(shape, dtype, low=-5, high=5), label="x0")
    t = data.draw(tensors((shape[0],), dtype if t_dtype == "like x0" else torch.float64, low=T_MIN, high=1.0),
                  label="t")
    coeff, expected_std = vp_kernel_by_quadrature(t, *betas.values)
    label = f"({name(dtype)} x0, {name(t.dtype)} t)"
    with citing("vp_marginal", "conventions"):
        r = student.call("vp_sde_marginal", x0, t, **betas.kwargs, return_inputs=True)
        mean, std = expect_tuple(r.value, 2, what="vp_sde_marginal(x0, t)")
        expect_close(mean, (per_example(coeff, x0) * x0.double()).to(dtype), what=f"mean {label}",
                     atol=slack(dtype, x0) * 10)
        expect_close(std, per_example(expected_std, x0).expand(shape).to(dtype), what=f"std {label}",
                     broadcast=True, atol=1e-6 if dtype == torch.float32 else None)
        expect_unchanged(r, x0, t)


@checks.add("vp_sde_marginal", "the discrete DDPM chain with betas_i = beta(i/N) / N converges to it as N grows",
            requires=VP_MARGINAL_PINS)
def vp_marginal_ddpm_limit(student):
    """alpha_bar_N(t) = prod_{i <= tN} (1 - beta(i/N) / N): sqrt(alpha_bar) -> the mean coefficient
    and sqrt(1 - alpha_bar) -> the std, with error O(beta_max^2 / N) (Riemann sum and the second
    order of log(1 - b)). Deterministic: the kernel's errors are 1.9e-3, 1.9e-4, 1.9e-5 at
    N = 1e3, 1e4, 1e5; the bound is 10 / N (a coefficient of exp(-t beta_min) instead of
    exp(-0.5 t beta_min) is off by 9e-3). Default betas, float64."""
    times = torch.tensor([0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    with citing("vp_marginal"):
        mean, std = expect_tuple(student.vp_sde_marginal(torch.ones(len(times), 1, dtype=torch.float64), times), 2)
        mean = expect_tensor(mean, shape=(len(times), 1), dtype=torch.float64, what="mean")
        std = expect_tensor(std, dtype=torch.float64, what="std").expand(len(times), 1)
        errors = {}
        for n in (1_000, 10_000, 100_000):
            grid = torch.arange(1, n + 1, dtype=torch.float64) / n
            alpha_bar = torch.cumprod(1 - beta_of(grid, *DEFAULT_BETAS) / n, 0)[(times * n).round().long() - 1]
            err = torch.maximum((mean[:, 0] - alpha_bar.sqrt()).abs(), (std[:, 0] - (1 - alpha_bar).sqrt()).abs())
            errors[n] = float(err.max())
            worst = int(err.argmax())
            expect(errors[n] <= 10.0 / n,
                   f"with N = {n} DDPM steps (betas_i = beta(i/N) / N), at t = {times[worst].item():g}: "
                   f"sqrt(alpha_bar) = {alpha_bar[worst].sqrt().item():.6f} and sqrt(1 - alpha_bar) = "
                   f"{(1 - alpha_bar[worst]).sqrt().item():.6f}, yours mean coefficient {mean[worst, 0].item():.6f}, "
                   f"std {std[worst, 0].item():.6f} (error {errors[n]:.2g} > {10.0 / n:.2g}); errors so far {errors}")


# ---------------------------------------------------------------------- reverse_sde_step / probability_flow_drift

N_SAMPLER, T_END = 100, 1e-3
DATA_MEAN = torch.tensor([1.5, -2.0], dtype=torch.float64)
DATA_VAR = torch.tensor([0.25, 2.0], dtype=torch.float64)
# The samplers run twice: default betas (not passed) on x [B, 2], and these betas passed on x [B, 1, 2].
SAMPLER_RUNS = ((None, (2,)), ((0.5, 12.0), (1, 2)))


def sampler_fixture(method: str, betas, event, seed: int = 0) -> Fixture:
    params = {"method": method, "n_steps": N_SAMPLER, "t_end": T_END, "seed": seed}
    if betas is not None:
        params.update(beta_min=betas[0], beta_max=betas[1])
    return Fixture("vp_sampler", params, {"mean": DATA_MEAN.reshape(event), "var": DATA_VAR.reshape(event)})


def sampler_label(betas, event) -> str:
    what = "default betas (not passed)" if betas is None else f"beta_min={betas[0]:g}, beta_max={betas[1]:g}"
    return f"{what}, x [B, {', '.join(map(str, event))}]"


@checks.add("reverse_sde_step", "an Euler-Maruyama sampler built from it matches the moments of that discretisation "
            "on Gaussian data (default and given betas)", points=2, requires=("reverse_sde_given_noise",))
def reverse_sde_sampler(student):
    """20000 samples from N(0, 1), 100 steps from t = 1 to 1e-3 in the worker with your
    reverse_sde_step and the exact VP score of N(m, s^2) data; once with the default betas on
    x [B, 2], once passing beta_min = 0.5, beta_max = 12 on x [B, 1, 2]. The discretised chain is
    linear-Gaussian: the judge propagates its mean and variance exactly. Per dim, a 6-sd z-test of
    the mean and a chi-square test of the variance (1e-9 per tail): false-fail < 4e-8."""
    n = 20_000
    for betas, event in SAMPLER_RUNS:
        x_init = torch.randn(n, *event, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        label = sampler_label(betas, event)
        with citing("reverse"):
            x = expect_tensor(student.call("reverse_sde_step.sample", sampler_fixture("sde", betas, event, seed=5),
                                           x_init).value, shape=(n, *event), dtype=torch.float64,
                              what=f"samples ({label})")
            mean, var, _ = vp_sampler_law(DATA_MEAN, DATA_VAR, N_SAMPLER, T_END, "sde", torch.zeros(2), torch.ones(2),
                                          *(betas or DEFAULT_BETAS))
            problems = gaussian_sample_problems(x.reshape(n, 2), mean, var)
            expect(not problems, f"{N_SAMPLER} Euler-Maruyama steps of the reverse VP-SDE on data "
                                 f"N({DATA_MEAN.tolist()}, {DATA_VAR.tolist()}), {label}: expected mean "
                                 f"{[round(v, 4) for v in mean.tolist()]}, variance "
                                 f"{[round(v, 4) for v in var.tolist()]}\n  " + "\n  ".join(problems))


@checks.add("probability_flow_drift", "an Euler sampler of the probability-flow ODE built from it is the exact affine "
            "map of that discretisation on Gaussian data (default and given betas)", points=2,
            requires=("pf_drift_exact",))
def pf_sampler(student):
    """Deterministic: 100 Euler steps x <- x - drift * dt from t = 1 to 1e-3 with the exact VP
    score of N(m, s^2) data map x_init to prod_k c_k x_init + (judge-propagated offset); once
    with the default betas on x [B, 2], once passing beta_min = 0.5, beta_max = 12 on x [B, 1, 2]."""
    n = 500
    for betas, event in SAMPLER_RUNS:
        x_init = torch.randn(n, *event, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
        label = sampler_label(betas, event)
        with citing("pf"):
            x = expect_tensor(student.call("probability_flow_drift.sample", sampler_fixture("ode", betas, event),
                                           x_init).value, shape=(n, *event), dtype=torch.float64,
                              what=f"samples ({label})")
            _, _, steps = vp_sampler_law(DATA_MEAN, DATA_VAR, N_SAMPLER, T_END, "ode", torch.zeros(2), torch.ones(2),
                                         *(betas or DEFAULT_BETAS))
            expected = x_init.reshape(n, 2)
            for c, d in steps:
                expected = c * expected + d
            expect_close(x.reshape(n, 2), expected, atol=1e-8,
                         what=f"samples after {N_SAMPLER} Euler steps of the probability-flow ODE ({label})")


# ---------------------------------------------------------------------- contrastive_divergence_loss

CD_MEAN = torch.tensor([[0.5, -1.0], [0.0, 2.0]], dtype=torch.float64)  # the quadratic energy's mean and precision
CD_PREC = torch.tensor([[1.0, 0.5], [2.0, 0.25]], dtype=torch.float64)


def quadratic_fixture(mean, prec) -> Fixture:
    return Fixture("quadratic_energy", {}, {"mean": mean, "prec": prec})


@checks.add("contrastive_divergence_loss", "E[loss] = E_pos[E(x)] - E_neg[E(x)] for Gaussian batches of different "
            "sizes and a quadratic energy", requires=("cd_matches_reference",))
def cd_expectation(student):
    """E(x) = sum_d 0.5 p (x - mu)^2 over x [B, 2, 2]; x_pos ~ N(m+, s+^2) (20000 samples) and x_neg ~
    N(m-, s-^2) (15000 samples) give E[E(x)] = sum_d 0.5 p (s^2 + (m - mu)^2) and Var[E(x)] =
    sum_d 0.25 p^2 (2 s^4 + 4 s^2 (m - mu)^2). One 6-sd z-test of the loss against the difference
    of the expectations (skewness of each mean < 0.02): false-fail < 1e-8."""
    gen = torch.Generator().manual_seed(7)
    moments = []
    batches = []
    for n, m, s in ((20_000, 1.0, 0.8), (15_000, -0.5, 1.5)):
        batches.append(m + s * torch.randn(n, 2, 2, generator=gen, dtype=torch.float64))
        dev = (m - CD_MEAN) ** 2
        moments.append((float((0.5 * CD_PREC * (s ** 2 + dev)).sum()),
                        float((0.25 * CD_PREC ** 2 * (2 * s ** 4 + 4 * s ** 2 * dev)).sum()) / n))
    x_pos, x_neg = batches
    expected = moments[0][0] - moments[1][0]
    sd = math.sqrt(moments[0][1] + moments[1][1])
    with citing("cd", "conventions"):
        r = student.call("contrastive_divergence_loss", quadratic_fixture(CD_MEAN, CD_PREC), x_pos, x_neg,
                         return_inputs=True)
        got = expect_tensor(r.value, shape=(), dtype=torch.float64, what="CD loss").item()
        expect(abs(got - expected) <= Z_FAIL * sd,
               f"CD loss with E(x) = sum_d 0.5 p (x - mu)^2, x_pos: {len(x_pos)} samples of N(1, 0.8^2), x_neg: "
               f"{len(x_neg)} samples of N(-0.5, 1.5^2) (shape [B, 2, 2]): got {got:.6g}, expected "
               f"E_pos[E] - E_neg[E] = {expected:.6g} ± {sd:.2g}")
        expect_unchanged(r, x_pos, x_neg)


@checks.add("contrastive_divergence_loss", "differentiable in the energy's parameters through both terms: its "
            "gradient is the derivative of its value", points=2, requires=CD_PINS)
@given(data=st.data())
def cd_parameter_gradients(student, data):
    """A quadratic energy sum 0.5 p (x - mu)^2: the reported gradient wrt (mu, p) must match central
    differences of the student's own values along a direction the worker cannot know
    (models.gradient_matches_differences). Detaching the energy of x_neg (not x_neg) keeps the
    value but drops the second term's gradient."""
    pos_shape = data.draw(batch_shapes, label="x_pos shape")
    neg_shape = (data.draw(st.integers(1, 6), label="x_neg batch size B'"), *pos_shape[1:])
    x_pos = data.draw(tensors(pos_shape, torch.float64, low=-4, high=4), label="x_pos")
    x_neg = data.draw(tensors(neg_shape, torch.float64, low=-4, high=4), label="x_neg")
    mean = data.draw(tensors(pos_shape[1:], torch.float64, low=-2, high=2), label="energy_fn mean")
    prec = data.draw(tensors(pos_shape[1:], torch.float64, low=0.1, high=3), label="energy_fn prec")
    with citing("cd_grad", "cd"):
        r = gradient_matches_differences(
            student, "contrastive_divergence_loss", quadratic_fixture(mean, prec), (x_pos, x_neg), what="CD loss",
            hint=" (detach x_neg before calling energy_fn, not the energy afterwards)")
        expect_unchanged(r, x_pos, x_neg)


@checks.add("contrastive_divergence_loss", "does not backpropagate into x_neg (gradient wrt x_neg is None or zero)",
            requires=CD_PINS)
@given(dtype=dtypes(), batch=st.integers(1, 6), batch_neg=st.integers(1, 6), energy_seed=st.integers(0, 2**16))
def cd_no_gradient_into_negatives(student, dtype, batch, batch_neg, energy_seed):
    """The gradient the worker reports for x_neg is None or zero, and one reaches the energy's parameters.

    This check trusts the worker's account: "no gradient flows into x_neg" is a property of the autograd
    graph, not of the loss's values (the loss does depend on x_neg, so finite differences of its values
    cannot tell a detached x_neg from an attached one). A worker that forges its gradients can pass it;
    the gradients that reach the parameters are verified against the student's own values in
    cd_parameter_gradients."""
    gen = torch.Generator().manual_seed(energy_seed)
    fixture = mlp_energy(3, [8], dtype, gen)
    x_pos = torch.randn(batch, 3, generator=gen, dtype=torch.float64).to(dtype)
    x_neg = torch.randn(batch_neg, 3, generator=gen, dtype=torch.float64).to(dtype)
    with citing("cd_grad"):
        r = student.call("contrastive_divergence_loss", fixture, x_pos, x_neg, wrt=(x_neg, fixture))
        expect_tensor(r.value, shape=(), dtype=dtype, what=f"CD loss ({name(dtype)})")
        g = r.grad(x_neg)
        expect(g is None or (isinstance(g, torch.Tensor) and bool((g == 0).all())),
               "a gradient reached x_neg: use energy_fn(x_neg.detach()) so the loss never moves the negative samples")
        grads = r.grad(fixture) or {}
        expect(any(v is not None and bool(v.abs().sum() > 0) for v in grads.values()),
               "no gradient reached the energy's parameters")
