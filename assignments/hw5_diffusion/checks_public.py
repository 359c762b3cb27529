"""hw5_diffusion public checks: properties that need no reference implementation.

Students run these with `dgm-grade check diffusion.py`. No check here computes a graded function,
by its handout formula or by any other route: the forward marginal, the posterior and the sampler
steps are computed only in closed_forms.py, which the hidden checks alone import. Expected values
come from:

* the student's own values: coefficients read off at unit inputs (q_sample's k and s, the
  posterior's a, b and variance), gradients against central differences, a batch against its
  examples one at a time, a float32 schedule against the float64 one;
* the student's other functions, where the handout relates them: predict_x0_from_noise inverts
  q_sample, the posterior averaged over x_t is q_sample one step earlier, p_sample_step is the
  posterior mean plus sqrt(its variance) * noise, DDIM with eta = 1 on consecutive steps is
  p_sample_step, inpainting's known pixels are q_sample;
* the fixtures' own predictions (the noise oracle of a known x0: its prediction is the true noise
  only at the x_t the handout's q_sample makes), and dynamic thresholding on inputs whose
  quantiles are known by construction.

Each of these properties also holds for some answers that are not the function (zeros, an echo of
an input, two functions wrong the same way), so it scores only when a check pinning the function's
value passes (``requires``). The value pins of q_sample, the posterior, predict_x0, the samplers,
the cosine schedule, guidance and inpainting are hidden checks (checks_hidden.py): under `grade`
they gate the public properties; under `check` they gate nothing.

Every check uses a fixed seed, so the same code always gets the same score (the statistical
sampling check is hidden: its expected moments come from the posterior).
"""
from __future__ import annotations

import math

import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor, expect_tuple, expect_unchanged
from grader.strategies import tensors
from grader.worker.fixtures import build

from .models import (
    F64, Case, ab_at, affine_eps, cases, data_shapes, expect_gradients_match_values, fixed_eps, noise_oracle,
    per_example, per_example_values,
)

checks = Checks()

F32 = torch.float32


def name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def atol_for(dtype: torch.dtype, scale: float = 1.0) -> float:
    """Absolute slack: float64 1e-9, float32 1e-5, times the size of the terms that cancel."""
    return (1e-9 if dtype == F64 else 1e-5) * max(1.0, scale)


def draw_affine(data, T: int, event: tuple[int, ...], dtype: torch.dtype, bound: float = 1.5):
    """scale, shift [T, *event] of an affine_eps model (eps_hat = scale[t] x_t + shift[t]) in [-bound, bound]."""
    scale = data.draw(tensors((T, *event), dtype, low=-bound, high=bound), label="model.scale")
    shift = data.draw(tensors((T, *event), dtype, low=-bound, high=bound), label="model.shift")
    return scale, shift


def oracle_noise(x0_hat: torch.Tensor, alpha_bars: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the noise_oracle(x0_hat) model predicts at (x_t, t), evaluated here in float64 (the model, not a
    graded function)."""
    model = build("noise_oracle", {}, {"x0": x0_hat.double(), "alpha_bars": alpha_bars.double()})
    return model(x_t.double(), t)


# ---------------------------------------------------------------------- linear_beta_schedule


@checks.add("linear_beta_schedule", "T values from beta_start to beta_end, evenly spaced (as torch.linspace)", points=2)
@given(T=st.integers(2, 1000), beta_start=st.floats(1e-5, 1e-2), width=st.floats(0.0, 0.5), defaults=st.booleans())
def linear_values(student, T, beta_start, width, defaults):
    """The handout: "T values evenly spaced from beta_start to beta_end inclusive (as torch.linspace)": the
    first is beta_start, the last beta_end, and consecutive differences are all equal."""
    if defaults:
        beta_start, beta_end = 1e-4, 0.02
        r = student.call("linear_beta_schedule", T, default_dtype=F64)
        shown = f"linear_beta_schedule({T})"
    else:
        beta_end = beta_start + width
        r = student.call("linear_beta_schedule", T, beta_start, beta_end, default_dtype=F64)
        shown = f"linear_beta_schedule({T}, beta_start={beta_start:g}, beta_end={beta_end:g})"
    betas = expect_tensor(r.value, shape=(T,), dtype=F64, what=f"{shown} (default dtype float64)")
    expect_close(betas[[0, -1]], torch.tensor([beta_start, beta_end], dtype=F64),
                 what=f"first and last betas of {shown} (\"from beta_start to beta_end inclusive\""
                      + (", defaults 1e-4 and 0.02)" if defaults else ")"))
    steps = betas[1:] - betas[:-1]
    expect_close(steps, steps.mean().expand(T - 1), atol=1e-12,
                 what=f"differences between consecutive betas of {shown} (\"evenly spaced\": all equal)")


@checks.add("linear_beta_schedule", "returned in the default dtype", requires=("linear_values",))
@given(T=st.integers(2, 50), dtype=st.sampled_from([F32, F64]))
def linear_dtype(student, T, dtype):
    r = student.call("linear_beta_schedule", T, 1e-3, 0.05, default_dtype=dtype)
    expect_tensor(r.value, shape=(T,), dtype=dtype,
                  what=f"linear_beta_schedule({T}, 1e-3, 0.05) with torch's default dtype {name(dtype)} "
                       "(the handout: \"[T] betas in the default dtype\")")


# ---------------------------------------------------------------------- cosine_beta_schedule


def optional_floats(default: float, low: float, high: float):
    """None (the argument left out, so its default applies), the default itself, or a value in [low, high]."""
    return st.sampled_from([None, default]) | st.floats(low, high)


def call_cosine(student, T, s, max_beta, dtype):
    kwargs = {k: v for k, v in (("s", s), ("max_beta", max_beta)) if v is not None}
    r = student.call("cosine_beta_schedule", T, **kwargs, default_dtype=dtype)
    shown = ", ".join([str(T)] + [f"{k}={v:g}" for k, v in kwargs.items()])
    return expect_tensor(r.value, shape=(T,), dtype=dtype, what=f"cosine_beta_schedule({shown}) "
                         f"(default dtype {name(dtype)})"), shown


@checks.add("cosine_beta_schedule", "returned in the default dtype, within (0, max_beta]; float32 agrees with float64",
            requires=("cosine_alpha_bars",))
@given(T=st.integers(1, 1000), s=optional_floats(0.008, 1e-3, 0.05), max_beta=optional_floats(0.999, 0.02, 0.999))
def cosine_float32(student, T, s, max_beta):
    """betas = min(1 - alpha_bar_(t+1)/alpha_bar_t, max_beta) lie in (0, max_beta] (f decreases on [0, T]);
    the float32 schedule is the float64 one rounded: cumprod(1 - betas) within 1e-3 relative, 1e-5 absolute."""
    betas, shown = call_cosine(student, T, s, max_beta, F32)
    cap = 0.999 if max_beta is None else max_beta
    expect(bool((betas > 0).all()) and bool((betas <= torch.tensor(cap, dtype=F32)).all()),
           f"betas of {shown} must lie in (0, max_beta = {cap:g}] (betas[t] = min(1 - alpha_bar_(t+1) / "
           f"alpha_bar_t, max_beta)); got min {betas.min().item():.4g}, max {betas.max().item():.4g}")
    betas64, _ = call_cosine(student, T, s, max_beta, F64)
    expect_close(torch.cumprod(1 - betas.double(), 0), torch.cumprod(1 - betas64, 0), atol=1e-5, rtol=1e-3,
                 what=f"alpha_bars = cumprod(1 - betas) of {shown} with default dtype float32, against your float64 "
                      "schedule (compute in float64 and convert at the end, as the handout suggests)")


@checks.add("cosine_beta_schedule", "alpha_bar depends on t / T only; the last beta is max_beta",
            requires=("cosine_alpha_bars",))
@given(T=st.integers(1, 500), s=optional_floats(0.008, 1e-3, 0.05), max_beta=optional_floats(0.999, 0.02, 0.999))
def cosine_time_rescaling(student, T, s, max_beta):
    """f(u) = cos((u/T + s)/(1 + s) pi/2)^2 depends on u/T: alpha_bar_u of T steps is alpha_bar_(2u) of 2T
    steps, at every step below the clip of both (a clipped step of 2T steps lies beyond the clip of T
    steps: the two steps of 2T that make one of T each remove less). And f(T) = cos(pi/2)^2 = 0, so the
    last beta, 1 - 0 / alpha_bar_(T-1) = 1, is clipped to max_beta."""
    cap = 0.999 if max_beta is None else max_beta
    betas, shown = call_cosine(student, T, s, max_beta, F64)
    fine, shown_fine = call_cosine(student, 2 * T, s, max_beta, F64)
    expect_close(betas[-1:], torch.tensor([cap], dtype=F64),
                 what=f"last beta of {shown} (alpha_bar_T = f(T) / f(0) = 0, so it is min(1, max_beta) = {cap:g})")
    k = int(torch.cumprod((betas < cap).long(), 0).sum())  # steps before the first clipped one
    if k:
        expect_close(torch.cumprod(1 - fine, 0)[1:2 * k:2], torch.cumprod(1 - betas, 0)[:k], atol=1e-12,
                     what=f"alpha_bar_(2t+1) = cumprod(1 - betas) of {shown_fine} against alpha_bar_t of {shown} "
                          f"at the {k} steps below the clip (f(u) depends on u / T only)")


# ---------------------------------------------------------------------- q_sample

# The value pins of q_sample and q_posterior_mean_variance are hidden (checks_hidden.py): their values
# are the handout's formulas. The public checks read each function's per-example coefficients off its
# own outputs and test what the handout says of them.
Q_SAMPLE_PIN = "q_sample_values"
POSTERIOR_PIN = "posterior_values"
X0_PIN = "x0_matches_reference"


def q_sample_coefficients(student, shape: tuple[int, ...], t: torch.Tensor, alpha_bars: torch.Tensor,
                          dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, s) [B] float64: the student's q_sample at (x0 = 1, noise = 0) and at (x0 = 0, noise = 1), so that
    x_t = k x0 + s noise when q_sample is linear in (x0, noise) with per-example coefficients (``q_sample_affine``)."""
    ones, zeros = torch.ones(shape, dtype=dtype), torch.zeros(shape, dtype=dtype)
    k = per_example_values(student.q_sample(ones, t, zeros, alpha_bars), shape, dtype,
                           what="q_sample(x0 = ones, t, noise = zeros, alpha_bars) (the coefficient of x0)")
    s = per_example_values(student.q_sample(zeros, t, ones, alpha_bars), shape, dtype,
                           what="q_sample(x0 = zeros, t, noise = ones, alpha_bars) (the coefficient of the noise)")
    return k, s


def coarser(case: Case) -> torch.dtype:
    """The coarser of the data's and the schedule's dtypes: a float32 schedule rounds the coefficients."""
    return F32 if F32 in (case.dtype, case.alpha_bars.dtype) else F64


@checks.add("q_sample", "x_t = k x0 + s noise with per-example k, s >= 0, k^2 + s^2 = 1, k increasing in "
            "alpha_bars[t]", points=1, requires=(Q_SAMPLE_PIN,))
@given(case=cases())
def q_sample_affine(student, case):
    """The handout's x_t = sqrt(alpha_bars[t]) x0 + sqrt(1 - alpha_bars[t]) noise, without its values: x_t is
    linear in (x0, noise) with one pair of coefficients per example (read off the student's own outputs at
    unit inputs), they preserve the variance (k^2 + s^2 = 1), and more signal is kept where alpha_bars[t] is
    larger. The echo of x0 or of the noise fails the last (k would not change with t); the formula's values
    are pinned by the hidden check."""
    k, s = q_sample_coefficients(student, tuple(case.x0.shape), case.t, case.alpha_bars, case.dtype)
    got = student.q_sample(case.x0, case.t, case.noise, case.alpha_bars)
    linear = per_example(k, case.x0) * case.x0.double() + per_example(s, case.x0) * case.noise.double()
    scale = float(case.x0.abs().max() + case.noise.abs().max())  # the terms added in float32
    expect_close(got, linear.to(case.dtype), atol=atol_for(case.dtype, scale),
                 what=f"x_t against k * x0 + s * noise, with k = {k.tolist()} and s = {s.tolist()} your q_sample's "
                      "values at (x0 = 1, noise = 0) and (x0 = 0, noise = 1) (x_t is linear in x0 and noise)")
    expect(bool((k >= 0).all() and (s >= 0).all()), f"coefficients k = {k.tolist()} of x0 and s = {s.tolist()} of the "
           "noise must be >= 0 (square roots of alpha_bars[t] and 1 - alpha_bars[t])")
    expect_close((k**2 + s**2).to(coarser(case)), torch.ones_like(k).to(coarser(case)),
                 what=f"k^2 + s^2 per example (k = {k.tolist()}, s = {s.tolist()}): x_t keeps unit variance for unit "
                      "x0 and noise (alpha_bars[t] + (1 - alpha_bars[t]) = 1)")
    ab = case.alpha_bars.double()[case.t]
    # pairs whose alpha_bars differ by more than rounding (float32: 6e-8) must order k the same way
    more = ab[:, None] > ab[None, :] + 1e-5
    wrong = more & ~(k[:, None] > k[None, :])
    if bool(wrong.any()):
        i, j = (int(v) for v in wrong.nonzero()[0])
        expect(False, f"example {i} (t = {int(case.t[i])}, alpha_bars[t] = {float(ab[i]):.6g}) has coefficient of x0 "
                      f"k = {float(k[i]):.6g}, example {j} (t = {int(case.t[j])}, alpha_bars[t] = {float(ab[j]):.6g}) "
                      f"k = {float(k[j]):.6g}: k must grow with alpha_bars[t] (k = sqrt(alpha_bars[t]); gather the "
                      "schedule at each example's own t)")


@checks.add("q_sample", "per-example coefficients broadcast over images [B, C, H, W]", requires=(Q_SAMPLE_PIN,))
@given(case=cases(shape=st.tuples(st.integers(2, 4), st.integers(1, 3), st.integers(2, 4), st.integers(2, 4)),
                  dtype=F64))
def q_sample_images(student, case):
    """Each example of an image batch is q_sample of that example alone (its own t), whatever the others."""
    got = expect_tensor(student.q_sample(case.x0, case.t, case.noise, case.alpha_bars), shape=case.x0.shape,
                        dtype=F64, what="x_t for image-shaped x0")
    for b in range(case.x0.shape[0]):
        alone = student.q_sample(case.x0[b:b + 1], case.t[b:b + 1], case.noise[b:b + 1], case.alpha_bars)
        expect_close(got[b:b + 1], alone, what=f"x_t of example {b} (t = {case.t[b].item()}) in the batch, against "
                     "q_sample of that example alone: the handout: \"Per-example coefficients ([B], gathered with "
                     "schedule[t]) must be reshaped to [B, 1, ..., 1]\" so each example uses its own t")


@checks.add("q_sample", "differentiable in x0 and noise; inputs unchanged", requires=(Q_SAMPLE_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def q_sample_gradients(student, data, case):
    cot = data.draw(tensors(case.x0.shape, case.dtype, low=-2, high=2), label="cotangent")
    inputs = {"x0": case.x0, "t": case.t, "noise": case.noise, "alpha_bars": case.alpha_bars}
    r = student.call("q_sample", *inputs.values(), wrt=(case.x0, case.noise), cotangent=cot, return_inputs=True)
    expect_tensor(r.value, shape=case.x0.shape, dtype=case.dtype, what="x_t")
    expect_gradients_match_values(student, "q_sample", inputs, r, cot, ("x0", "noise"), what="x_t")
    expect_unchanged(r, *inputs.values())


# ---------------------------------------------------------------------- q_posterior_mean_variance


def posterior_parts(student, case: Case, x_t: torch.Tensor):
    """The student's posterior at (x0, x_t) and its per-example coefficients, read off its own outputs:
    (mean [B, ...], var [B, ...] broadcast to x_t, a [B], b [B], v [B]) with mean = a x0 + b x_t when the mean is
    linear (``posterior_linear``) and v the variance per example. All float64."""
    shape = tuple(case.x0.shape)
    ones, zeros = torch.ones(shape, dtype=case.dtype), torch.zeros(shape, dtype=case.dtype)
    outs = {}
    for label, (x0, xt) in {"(x0, x_t)": (case.x0, x_t), "(x0 = ones, x_t = zeros)": (ones, zeros),
                            "(x0 = zeros, x_t = ones)": (zeros, ones)}.items():
        mean, var = expect_tuple(student.q_posterior_mean_variance(x0, xt, case.t, case.betas), 2,
                                 what=f"q_posterior_mean_variance at {label}")
        mean = expect_tensor(mean, shape=shape, dtype=case.dtype, what=f"posterior mean at {label}")
        var = expect_tensor(var, dtype=case.dtype, what=f"posterior variance at {label}")
        try:
            var = var.expand(shape)
        except RuntimeError:
            raise AssertionError(f"posterior variance: shape {list(var.shape)} does not broadcast to x_t "
                                 f"{list(shape)}") from None
        outs[label] = (mean, var)
    mean, var = outs["(x0, x_t)"]
    a = per_example_values(outs["(x0 = ones, x_t = zeros)"][0], shape, case.dtype,
                           what="posterior mean at x0 = ones, x_t = zeros (the coefficient of x0)")
    b = per_example_values(outs["(x0 = zeros, x_t = ones)"][0], shape, case.dtype,
                           what="posterior mean at x0 = zeros, x_t = ones (the coefficient of x_t)")
    v = per_example_values(var, shape, case.dtype, what="posterior variance")
    for label, (_, other) in outs.items():
        expect(torch.equal(other, var), f"posterior variance at {label} differs from the one at (x0, x_t): "
               "beta_tilde_t depends on t and the schedule only, not on x0 or x_t")
    return mean.double(), var.double(), a, b, v


@checks.add("q_posterior_mean_variance", "mean a x0 + b x_t with per-example a, b; variance independent of x0 and "
            "x_t, within [0, betas[t]]", requires=(POSTERIOR_PIN,))
@given(data=st.data(), case=cases())
def posterior_linear(student, data, case):
    """The handout's eq. 7 without its values: the mean is linear in (x0, x_t) with one pair of coefficients per
    example (read off the student's own outputs at unit inputs), and the variance beta_tilde_t =
    betas[t] (1 - alpha_bar_prev) / (1 - alpha_bar_t) lies in [0, betas[t]] (alpha_bar_prev >= alpha_bar_t)."""
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-5, high=5), label="x_t")
    mean, _, a, b, v = posterior_parts(student, case, x_t)
    linear = per_example(a, case.x0) * case.x0.double() + per_example(b, case.x0) * x_t.double()
    scale = float(case.x0.abs().max() + x_t.abs().max())  # the terms added in float32
    expect_close(mean.to(case.dtype), linear.to(case.dtype), atol=atol_for(case.dtype, scale),
                 what=f"posterior mean against a * x0 + b * x_t, with a = {a.tolist()} and b = {b.tolist()} your "
                      "posterior means at (x0 = 1, x_t = 0) and (x0 = 0, x_t = 1) (the mean is linear in x0 and x_t)")
    beta_t = case.betas.double()[case.t]
    slack = atol_for(coarser(case))
    bad = (v < -slack) | (v > beta_t * (1 + slack) + slack)
    expect(not bool(bad.any()), f"posterior variance per example {v.tolist()} must lie in [0, betas[t]] = "
           f"[0, {beta_t.tolist()}] (beta_tilde_t = betas[t] (1 - alpha_bar_prev) / (1 - alpha_bar_t) and "
           "alpha_bar_prev >= alpha_bar_t)")


@checks.add("q_posterior_mean_variance", "averaged over x_t ~ q_sample(x0, t, .), gives q_sample(x0, t - 1, .): "
            "the same mean and variance", uses=("q_sample",), requires=(POSTERIOR_PIN,))
@given(data=st.data(), case=cases())
def posterior_consistent(student, data, case):
    """The posterior is q(x_(t-1) | x_t, x0), so averaging it over x_t ~ q(x_t | x0) gives back
    q(x_(t-1) | x0) (the laws of total expectation and variance). With your q_sample's coefficients,
    x_t = k_t x0 + s_t eps, and your posterior's, mean = a x0 + b x_t and variance v, that is:
    a + b k_t = k_(t-1) and v + b^2 s_t^2 = s_(t-1)^2, for t >= 1. Nothing is computed from the schedule
    here: both sides are your functions' values."""
    T = len(case.betas)
    assume(T >= 2)
    t = torch.where(case.t >= 1, case.t, torch.full_like(case.t, T - 1))  # every example has a step before it
    case = Case(case.x0, t, case.noise, case.betas, case.alpha_bars)
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-5, high=5), label="x_t")
    _, _, a, b, v = posterior_parts(student, case, x_t)
    shape = tuple(case.x0.shape)
    k, s = q_sample_coefficients(student, shape, t, case.alpha_bars, case.dtype)
    k_prev, s_prev = q_sample_coefficients(student, shape, t - 1, case.alpha_bars, case.dtype)
    # compared in the coarser dtype, with its tolerances: coefficients are at most 1, and a float32 schedule rounds
    # alpha_bars (q_sample's, cast from float64) and their cumprod (the posterior's, in float32) differently: by
    # up to T ulps of alpha_bar, which 1 / (1 - alpha_bar_t) <= 1 / beta_0 amplifies to about 2e-5 at worst
    dtype = coarser(case)
    expect_close((a + b * k).to(dtype), k_prev.to(dtype),
                 what=f"a + b k_t per example, against k_(t-1) (t = {t.tolist()}): your posterior mean's coefficients "
                      f"a = {a.tolist()} of x0 and b = {b.tolist()} of x_t, your q_sample's coefficient k of x0 at t "
                      "and t - 1. The mean of the posterior, averaged over x_t, must be the mean of x_(t-1) given x0")
    expect_close((v + b**2 * s**2).to(dtype), (s_prev**2).to(dtype),
                 what=f"v + b^2 s_t^2 per example, against s_(t-1)^2 (t = {t.tolist()}): your posterior variance "
                      f"v = {v.tolist()}, its coefficient b of x_t, your q_sample's coefficient s of the noise at t "
                      "and t - 1. The posterior's variance plus the variance of its mean over x_t must be the variance "
                      "of x_(t-1) given x0")


@checks.add("q_posterior_mean_variance", "is (x0, 0) at t == 0 (never alpha_bars[-1])", requires=(POSTERIOR_PIN,))
@given(data=st.data(), case=cases(max_T=30))
def posterior_at_zero(student, data, case):
    B = case.x0.shape[0]
    t = torch.zeros(B, dtype=torch.int64)
    if B > 1:  # some later steps in the same batch
        t[1:] = case.t[1:]
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-5, high=5), label="x_t")
    mean, var = expect_tuple(student.q_posterior_mean_variance(case.x0, x_t, t, case.betas), 2)
    mean = expect_tensor(mean, shape=case.x0.shape, dtype=case.dtype, what="posterior mean")
    var = expect_tensor(var, dtype=case.dtype, what="posterior variance")
    zero = t == 0
    expect_close(mean[zero], case.x0[zero], what="posterior mean where t == 0 (the handout: \"At t == 0 the result "
                 "must be exactly (x0, 0)\")", atol=atol_for(case.dtype))
    try:
        var_full = var.expand(case.x0.shape)
    except RuntimeError:
        raise AssertionError(f"posterior variance: shape {list(var.shape)} does not broadcast to x_t "
                             f"{list(case.x0.shape)}") from None
    expect_close(var_full[zero], torch.zeros_like(case.x0[zero]), atol=1e-12,
                 what="posterior variance where t == 0 (the handout: \"At t == 0 the result must be exactly (x0, 0)\")")


@checks.add("q_posterior_mean_variance", "keeps x_t's dtype, differentiable mean, inputs unchanged",
            requires=(POSTERIOR_PIN,))
@given(data=st.data(), case=cases())
def posterior_dtype(student, data, case):
    """The mean is linear in x0 and x_t, so central differences of the student's own means give its gradients
    exactly."""
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-5, high=5), label="x_t")
    cot = data.draw(tensors(case.x0.shape, case.dtype, low=-2, high=2), label="cotangent")
    inputs = {"x0": case.x0, "x_t": x_t, "t": case.t, "betas": case.betas}
    r = student.call("q_posterior_mean_variance", *inputs.values(), wrt=(case.x0, x_t), output=(0,),
                     cotangent=cot, return_inputs=True)
    mean, var = expect_tuple(r.value, 2)
    expect_tensor(mean, shape=case.x0.shape, dtype=case.dtype, what="posterior mean (in x_t's dtype)")
    expect_tensor(var, dtype=case.dtype, what="posterior variance (in x_t's dtype)")
    expect_gradients_match_values(student, "q_posterior_mean_variance", inputs, r, cot, ("x0", "x_t"),
                                  what="posterior mean", output=(0,))
    expect_unchanged(r, *inputs.values())


# ---------------------------------------------------------------------- predict_x0_from_noise


@checks.add("predict_x0_from_noise", "inverts q_sample: recovers x0 (unclipped) from x_t and the noise", points=2,
            uses=("q_sample",), requires=(X0_PIN,))
@given(case=cases(x_bound=20.0))
def x0_inverts(student, case):
    """x_t is your q_sample(x0, t, noise); the handout: "Invert q_sample for x0 given the noise (no
    clipping)". Consistency of your two functions (the echo of x0 by q_sample and of x_t here would
    pass it): scored only when the hidden value pin of predict_x0_from_noise passes."""
    x_t = expect_tensor(student.q_sample(case.x0, case.t, case.noise, case.alpha_bars), shape=case.x0.shape,
                        dtype=case.dtype, what="your q_sample(x0, t, noise, alpha_bars), the x_t given here")
    got = student.predict_x0_from_noise(x_t, case.t, case.noise, case.alpha_bars)
    what = "x0_hat for x_t = your q_sample(x0, t, noise) (must be x0: no clipping)"
    if case.dtype == F64:
        expect_close(got, case.x0, what=what, atol=1e-8)
    else:  # rounding x_t to float32 moves the exact answer by up to 6e-8 |x_t| / sqrt(alpha_bar)
        ab = ab_at(case.alpha_bars, case.t)
        scale = float((x_t.abs().max() + case.noise.abs().max()) / ab.min().sqrt())
        expect_close(got, case.x0, what=what + " (float32 data: the result takes the data's dtype)",
                     atol=atol_for(F32, scale))


@checks.add("predict_x0_from_noise", "keeps x_t's dtype, differentiable in x_t and noise, inputs unchanged",
            requires=(X0_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def x0_dtype(student, data, case):
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_t")
    cot = data.draw(tensors(case.x0.shape, case.dtype, low=-2, high=2), label="cotangent")
    inputs = {"x_t": x_t, "t": case.t, "noise": case.noise, "alpha_bars": case.alpha_bars}
    r = student.call("predict_x0_from_noise", *inputs.values(), wrt=(x_t, case.noise), cotangent=cot,
                     return_inputs=True)
    expect_tensor(r.value, shape=x_t.shape, dtype=case.dtype, what="x0_hat (in x_t's dtype)")
    expect_gradients_match_values(student, "predict_x0_from_noise", inputs, r, cot, ("x_t", "noise"), what="x0_hat")
    expect_unchanged(r, *inputs.values())


# ---------------------------------------------------------------------- noise_prediction_loss


@checks.add("noise_prediction_loss", "a model predicting the true noise plus delta scores mean(delta^2) "
            "(0 for the oracle)", points=2)
@given(data=st.data(), case=cases(), exact=st.booleans())
def loss_oracle(student, data, case, exact):
    """The model noise_oracle(x0') predicts (x_t - sqrt(ab[t]) x0') / sqrt(1 - ab[t]) (the fixture, in the
    worker): the true noise when x0' = x0 and the model is called on x_t = q_sample(x0, t, noise) with the
    same t. With x0' = x0 - e it predicts that plus delta = model_(x0')(x, t) - model_(x0)(x, t), the same
    for every x (the judge evaluates the two models at x = 0), so the loss, a mean of squared errors, is
    mean(delta^2). Only the models are evaluated here, never q_sample."""
    e = torch.zeros_like(case.x0) if exact else data.draw(
        tensors(case.x0.shape, case.dtype, low=-0.5, high=0.5), label="x0_shift")
    shifted = (case.x0.double() - e.double()).to(case.dtype)
    origin = torch.zeros(case.x0.shape, dtype=F64)
    delta = (oracle_noise(shifted, case.alpha_bars, origin, case.t)
             - oracle_noise(case.x0, case.alpha_bars, origin, case.t))
    loss = student.noise_prediction_loss(noise_oracle(shifted, case.alpha_bars), case.x0, case.t, case.noise,
                                         case.alpha_bars)
    loss = expect_tensor(loss, shape=(), dtype=case.dtype, what="loss (a scalar in the data's dtype)")
    expected = (delta ** 2).mean()
    mean_abs = float(delta.abs().mean())
    # float32: rounding of the O(1) terms that cancel (x_t, the model's output) leaves about 1e-7, and each
    # squared error is off by 2 |delta| times the model's rounding (below 1e-3 |delta| while sqrt(1 - ab) >= 0.03)
    atol = (1e-15 if case.dtype == F64 else 1e-6) + (1e-10 if case.dtype == F64 else 1e-3) * mean_abs
    expect_close(loss, expected.to(case.dtype), atol=atol,
                 what=("loss with a model that recovers the true noise (must be 0)" if exact else
                       "loss with a model that predicts the true noise plus delta (must be mean(delta^2))")
                 + ": the handout: \"mean over all elements of (noise - model(q_sample(x0, t, noise, alpha_bars), "
                   "t))^2\"")


@checks.add("noise_prediction_loss", "equals the MSE to a model's fixed output", requires=("loss_oracle",))
@given(data=st.data(), case=cases(x_bound=3.0))
def loss_fixed_output(student, data, case):
    out = data.draw(tensors(case.x0.shape, case.dtype, low=-3, high=3), label="model_output")
    loss = student.noise_prediction_loss(fixed_eps(out), case.x0, case.t, case.noise, case.alpha_bars)
    expected = ((case.noise.double() - out.double()) ** 2).mean()
    expect_close(loss, expected.to(case.dtype), what="loss with a model whose output is known: mean over all elements "
                 "of (noise - output)^2")


@checks.add("noise_prediction_loss", "differentiable in the model's parameters, x0 and noise; inputs unchanged",
            requires=("loss_oracle",))
@given(data=st.data(), case=cases(dtype=F64, x_bound=3.0))
def loss_gradients(student, data, case):
    """The model eps_hat = scale[t] x_t + shift[t] makes the loss quadratic in scale, shift, x0 and noise,
    so central differences of the loss give its gradients exactly."""
    event = tuple(case.x0.shape[1:])
    if event and data.draw(st.booleans(), label="per_channel_model"):  # one coefficient per channel
        event = (event[0],) + (1,) * (len(event) - 1)
    scale, shift = draw_affine(data, len(case.betas), event, case.dtype)
    model = affine_eps(scale, shift)
    inputs = {"model": model, "x0": case.x0, "t": case.t, "noise": case.noise, "alpha_bars": case.alpha_bars}
    cot = torch.ones((), dtype=F64)
    r = student.call("noise_prediction_loss", *inputs.values(), wrt=(model, case.x0, case.noise), cotangent=cot,
                     return_inputs=True)
    expect_tensor(r.value, shape=(), dtype=F64, what="loss")
    grads = r.grad(model) or {}
    for pname in ("scale", "shift"):
        expect(grads.get(pname) is not None, f"no gradient reached the model's parameter {pname!r}: keep the loss "
               "differentiable (no .item(), .detach() or torch.no_grad())")
    expect_gradients_match_values(student, "noise_prediction_loss", inputs, r, cot,
                                  ("model.scale", "model.shift", "x0", "noise"), what="loss")
    expect_unchanged(r, case.x0, case.t, case.noise, case.alpha_bars)


# ---------------------------------------------------------------------- p_sample_step

P_SAMPLE_PIN = "p_sample_affine_values"  # hidden: the step's value for a generic (affine) model


def oracle_scale(case: Case, x0_hat: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> float:
    """Size of the terms that cancel in x0_hat = (x_t - sqrt(1 - ab) eps) / sqrt(ab) (|sqrt(1 - ab) eps| is at
    most |x_t| + |x0_hat| for this model), for float32 slack."""
    ab = ab_at(case.alpha_bars, t)
    return float(2 * (x_t.abs().max() + x0_hat.abs().max() + case.noise.abs().max()) / ab.min().sqrt())


@checks.add("p_sample_step", "your posterior mean at the predicted x0, plus sqrt(your posterior variance) * noise",
            points=2, uses=("q_posterior_mean_variance",), requires=(P_SAMPLE_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def p_sample_values(student, data, case):
    """The model noise_oracle(x0_hat) predicts eps = (x_t - sqrt(ab[t]) x0_hat) / sqrt(1 - ab[t]), whose
    predict_x0_from_noise is x0_hat, for any x_t. The handout: "mean equals the posterior mean of
    q_posterior_mean_variance with x0 replaced by predict_x0_from_noise(x_t, t, eps, ...)", and
    x_prev = mean + sqrt(beta_tilde_t) * noise, no noise where t == 0. Both are compared with your
    q_posterior_mean_variance at (x0_hat, x_t): the step with noise = 0 is its mean, and the noise adds
    sqrt(its variance) times the noise. A consistency of your two functions (zeros from both would pass
    it), scored only when the hidden value pin of p_sample_step passes."""
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_t")
    shape = tuple(case.x0.shape)
    mean, var = expect_tuple(student.q_posterior_mean_variance(case.x0, x_t, case.t, case.betas), 2,
                             what="your q_posterior_mean_variance(x0_hat, x_t, t, betas)")
    mean = expect_tensor(mean, shape=shape, dtype=case.dtype, what="your posterior mean")
    var = expect_tensor(var, dtype=case.dtype, what="your posterior variance")
    try:
        var = var.expand(shape)
    except RuntimeError:
        raise AssertionError(f"your posterior variance: shape {list(var.shape)} does not broadcast to x_t "
                             f"{list(shape)}") from None
    model = noise_oracle(case.x0, case.alpha_bars)
    quiet = expect_tensor(student.p_sample_step(model, x_t, case.t, case.betas, torch.zeros_like(case.noise)),
                          shape=shape, dtype=case.dtype, what="x_(t-1) with noise = 0")
    got = expect_tensor(student.p_sample_step(model, x_t, case.t, case.betas, case.noise), shape=shape,
                        dtype=case.dtype, what="x_(t-1)")
    # each side is a float32 computation within atol_for(oracle_scale) of the exact step (p_sample_step's
    # predicted x0 loses digits to the cancellation oracle_scale measures), so twice that covers the two
    atol = 2 * atol_for(case.dtype, oracle_scale(case, case.x0, x_t, case.t))
    expect_close(quiet, mean, atol=atol,
                 what=f"x_(t-1) with noise = 0 ({name(case.dtype)} data, {name(case.betas.dtype)} betas; a model whose "
                      "predicted x0 is case.x0), against your posterior mean at (x0_hat, x_t)")
    noise_part = (got.double() - quiet.double()).to(case.dtype)
    expect_close(noise_part, (var.double().sqrt() * case.noise.double()).to(case.dtype), atol=atol,
                 what="x_(t-1) minus x_(t-1) with noise = 0, against sqrt(your posterior variance) * noise (no noise "
                      "where t == 0, where the variance is 0)")


@checks.add("p_sample_step", "adds no noise at t == 0: returns the predicted x0", requires=(P_SAMPLE_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def p_sample_at_zero(student, data, case):
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_t")
    t = torch.zeros_like(case.t)
    got = student.p_sample_step(noise_oracle(case.x0, case.alpha_bars), x_t, t, case.betas, case.noise)
    expect_close(got, case.x0, atol=atol_for(case.dtype, oracle_scale(case, case.x0, x_t, t) * 100),
                 what="x_(t-1) at t == 0 with a model whose predicted x0 is case.x0 (the handout: beta_tilde_0 = 0, "
                      "\"no noise where t == 0\", and the posterior mean at t == 0 is x0_hat; beware "
                      "alpha_bars[t - 1] at t == 0)")


@checks.add("p_sample_step", "keeps x_t's dtype, differentiable in x_t and noise, inputs unchanged",
            requires=(P_SAMPLE_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def p_sample_dtype(student, data, case):
    """With the affine model eps_hat = scale[t] x_t + shift[t], x_(t-1) is linear in x_t and noise."""
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_t")
    scale, shift = draw_affine(data, len(case.betas), tuple(case.x0.shape[1:]), case.dtype, bound=1.0)
    cot = data.draw(tensors(x_t.shape, case.dtype, low=-2, high=2), label="cotangent")
    inputs = {"model": affine_eps(scale, shift), "x_t": x_t, "t": case.t, "betas": case.betas, "noise": case.noise}
    r = student.call("p_sample_step", *inputs.values(), wrt=(x_t, case.noise), cotangent=cot, return_inputs=True)
    expect_tensor(r.value, shape=x_t.shape, dtype=case.dtype, what="x_(t-1) (in x_t's dtype)")
    expect_gradients_match_values(student, "p_sample_step", inputs, r, cot, ("x_t", "noise"), what="x_(t-1)")
    expect_unchanged(r, x_t, case.t, case.betas, case.noise)


# ---------------------------------------------------------------------- ddim_step


def t_prevs(t: torch.Tensor, prev: str = "any"):
    """t_prev [B] for timesteps t: anywhere in -1 .. t-1 ('any'), all -1 ('start'), or t - 1 ('consecutive')."""
    if prev == "start":
        return st.just(torch.full_like(t, -1))
    if prev == "consecutive":
        return st.just(t - 1)
    return st.tuples(*[st.integers(-1, int(s) - 1) for s in t]).map(lambda v: torch.tensor(v, dtype=torch.int64))


DDIM_PIN = "ddim_matches_reference"  # hidden


def ddim_slack(case: Case, x_t: torch.Tensor) -> float:
    return atol_for(case.dtype, float(x_t.abs().max() / ab_at(case.alpha_bars, case.t).min().sqrt()) * 10)


@checks.add("ddim_step", "t_prev = -1 (alpha_bar = 1) returns the predicted x0, whatever eta and the noise",
            points=2, requires=(DDIM_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0), eta=st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
def ddim_recovers_x0(student, data, case, eta):
    """With a_prev = 1: sigma = eta sqrt((1 - a_prev)/(1 - a)) sqrt(1 - a/a_prev) = 0 and
    x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps = x0_hat. The model noise_oracle(x0) has
    predicted x0 = case.x0 for any x_t."""
    t_prev = torch.full_like(case.t, -1)
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_t")
    for noise in (case.noise, data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="noise")):
        got = student.ddim_step(noise_oracle(case.x0, case.alpha_bars), x_t, case.t, t_prev, case.alpha_bars, eta,
                                noise)
        expect_close(got, case.x0, atol=ddim_slack(case, x_t),
                     what=f"x_prev from t_prev = -1 (alpha_bar = 1) with eta = {eta:g}: must be the predicted x0 "
                          "(case.x0 for this model), whatever the noise argument")


@checks.add("ddim_step", "eta = 0 keeps the predicted noise: the model predicts the same eps_hat at (x_prev, t_prev)",
            points=2, requires=(DDIM_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def ddim_consistent(student, data, case):
    """eta = 0: sigma = 0 and x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev) eps_hat, whatever the noise
    argument: the point at t_prev with the same predicted x0 and the same predicted noise (the handout's
    deterministic sampler). The model noise_oracle(x0) has x0_hat = case.x0 at every point, so its
    prediction at (x_prev, t_prev) must be eps_hat, its prediction at (x_t, t); where t_prev == -1 (a_prev = 1)
    x_prev must be x0_hat itself. Only the model is evaluated here (the judge's float64 copy of it)."""
    t_prev = data.draw(t_prevs(case.t), label="t_prev")
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_t")
    model = noise_oracle(case.x0, case.alpha_bars)
    got = [expect_tensor(student.ddim_step(model, x_t, case.t, t_prev, case.alpha_bars, 0.0, z), shape=x_t.shape,
                         dtype=case.dtype, what="x_prev with eta = 0")
           for z in (case.noise, data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="noise"))]
    slack = ddim_slack(case, x_t)
    expect_close(got[1], got[0], atol=slack, what="x_prev with eta = 0 and another noise argument (sigma = 0: the "
                 "noise must not matter)")
    start = t_prev < 0
    expect_close(got[0][start], case.x0[start], atol=slack,
                 what="x_prev with eta = 0 where t_prev == -1 (a_prev = 1: the predicted x0, case.x0 for this model)")
    later = ~start
    if bool(later.any()):
        eps_hat = oracle_noise(case.x0[later], case.alpha_bars, x_t[later], case.t[later])
        eps_prev = oracle_noise(case.x0[later], case.alpha_bars, got[0][later], t_prev[later])
        # x_prev's rounding (ddim_slack) reaches the prediction divided by sqrt(1 - a_prev)
        ab_prev = ab_at(case.alpha_bars, t_prev[later])
        expect_close(eps_prev.to(case.dtype), eps_hat.to(case.dtype), atol=slack / float((1 - ab_prev).min().sqrt()),
                     what=f"the model's prediction at (x_prev, t_prev) with eta = 0, against its prediction at "
                          f"(x_t, t) (t = {case.t[later].tolist()}, t_prev = {t_prev[later].tolist()}): "
                          "x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev) eps_hat keeps the predicted noise")


@checks.add("ddim_step", "eta = 1 on consecutive steps is your DDPM step (p_sample_step)", points=2,
            uses=("p_sample_step",), requires=(DDIM_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def ddim_eta_one(student, data, case):
    """With t_prev = t - 1, sigma^2 = (1 - a_prev)/(1 - a) (1 - a/a_prev) = beta_tilde_t and
    sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps_hat is the posterior mean at x0_hat: the handout,
    "eta = 1 matches DDPM's ancestral variance for consecutive steps". Compared with your p_sample_step on
    the same model, x_t and noise (betas: the schedule whose cumprod is alpha_bars). Model:
    noise_oracle(x0), whose predicted x0 is case.x0 for any x_t."""
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_t")
    model = noise_oracle(case.x0, case.alpha_bars)
    got = student.ddim_step(model, x_t, case.t, case.t - 1, case.alpha_bars, 1.0, case.noise)
    ddpm = expect_tensor(student.p_sample_step(model, x_t, case.t, case.betas, case.noise), shape=x_t.shape,
                         dtype=case.dtype, what="your p_sample_step on the same model, x_t, t and noise")
    # the DDIM step is within 10 atol_for(oracle_scale) of the exact step, p_sample_step within 1 (p_sample_values)
    atol = 11 * atol_for(case.dtype, oracle_scale(case, case.x0, x_t, case.t))
    expect_close(got, ddpm, atol=atol,
                 what="x_prev with eta = 1 and t_prev = t - 1, against your p_sample_step (sigma = eta sqrt((1 - "
                      "a_prev)/(1 - a)) sqrt(1 - a/a_prev) makes sigma^2 the posterior variance; must be the posterior "
                      "mean at the predicted x0 plus sigma * noise)")


@checks.add("ddim_step", "keeps x_t's dtype, differentiable (through the model too), inputs unchanged",
            requires=(DDIM_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0), eta=st.floats(0.0, 1.0))
def ddim_dtype(student, data, case, eta):
    """An affine model eps_hat = scale[t] x_t + shift[t], so x_prev depends on x_t through x0_hat
    and through eps_hat (with the noise oracle x0_hat is x0 whatever x_t: a detached x0_hat would
    go unseen), and x_prev is linear in x_t, noise, scale and shift: central differences of the
    student's own values give the gradients exactly."""
    t_prev = data.draw(t_prevs(case.t), label="t_prev")
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_t")
    cot = data.draw(tensors(x_t.shape, case.dtype, low=-2, high=2), label="cotangent")
    scale, shift = draw_affine(data, len(case.alpha_bars), tuple(x_t.shape[1:]), case.dtype, bound=1.0)
    model = affine_eps(scale, shift)
    inputs = {"model": model, "x_t": x_t, "t": case.t, "t_prev": t_prev, "alpha_bars": case.alpha_bars, "eta": eta,
              "noise": case.noise}
    r = student.call("ddim_step", *inputs.values(), wrt=(model, x_t, case.noise), cotangent=cot, return_inputs=True)
    expect_tensor(r.value, shape=x_t.shape, dtype=case.dtype, what="x_prev (in x_t's dtype)")
    grads = r.grad(model) or {}
    for pname in ("scale", "shift"):
        expect(grads.get(pname) is not None, f"no gradient of x_prev reached the model's {pname}: keep the step "
               "differentiable (no .detach(), .item() or torch.no_grad())")
    expect_gradients_match_values(student, "ddim_step", inputs, r, cot, ("x_t", "noise", "model.scale", "model.shift"),
                                  what="x_prev")
    expect_unchanged(r, x_t, case.t, t_prev, case.alpha_bars, case.noise)


# ---------------------------------------------------------------------- classifier_free_guidance


def eps_pairs(data, dtype=None):
    """eps_cond, eps_uncond of one drawn shape and dtype."""
    shape = data.draw(data_shapes(), label="shape")
    dtype = data.draw(st.sampled_from([F32, F64]), label="dtype") if dtype is None else dtype
    eps_c = data.draw(tensors(shape, dtype, low=-5, high=5), label="eps_cond")
    eps_u = data.draw(tensors(shape, dtype, low=-5, high=5), label="eps_uncond")
    return eps_c, eps_u


@checks.add("classifier_free_guidance", "w = 0 gives eps_uncond and w = 1 gives eps_cond (float and tensor w)",
            requires=("cfg_values",))
@given(data=st.data())
def cfg_edges(student, data):
    eps_c, eps_u = eps_pairs(data)
    B = eps_c.shape[0]
    for w, target, label in ((0.0, eps_u, "eps_uncond"), (1.0, eps_c, "eps_cond")):
        which = "unconditional" if w == 0 else "conditional"
        expect_close(student.classifier_free_guidance(eps_c, eps_u, w), target, what=f"guidance with w = {w:g} "
                     f"(the handout: \"w = {w:g} gives the {which} prediction\", {label})")
        w_t = torch.full((B,), w, dtype=eps_c.dtype)
        expect_close(student.classifier_free_guidance(eps_c, eps_u, w_t), target,
                     what=f"guidance with w = torch.full([B], {w:g}) (must be {label})")


@checks.add("classifier_free_guidance", "affine in w; a tensor w [B] weighs each example by its own w",
            requires=("cfg_values",))
@given(data=st.data(), w=st.floats(-1, 10))
def cfg_affine_in_w(student, data, w):
    """eps_uncond + w (eps_cond - eps_uncond) is affine in w: guided(w) = (1 - w) guided(0) + w guided(1),
    with the student's own values at 0 and 1; and with w [B], example b is guided(w[b]) of example b."""
    eps_c, eps_u = eps_pairs(data)
    B = eps_c.shape[0]
    at = {v: student.classifier_free_guidance(eps_c, eps_u, v) for v in (0.0, 1.0, w)}
    at = {v: expect_tensor(g, shape=eps_c.shape, dtype=eps_c.dtype, what=f"guided eps for w = {v:g}")
          for v, g in at.items()}
    expect_close(at[w], ((1 - w) * at[0.0].double() + w * at[1.0].double()).to(eps_c.dtype),
                 atol=atol_for(eps_c.dtype, 100),
                 what=f"guided eps for w = {w:g} against (1 - w) * (your value at w = 0) + w * (your value at w = 1): "
                      "eps_uncond + w * (eps_cond - eps_uncond) is affine in w")
    w_b = data.draw(tensors((B,), eps_c.dtype, low=-1, high=10), label="w_per_example")
    got = expect_tensor(student.classifier_free_guidance(eps_c, eps_u, w_b), shape=eps_c.shape, dtype=eps_c.dtype,
                        what="guided eps for a tensor w [B]")
    for b in range(B):
        one = student.classifier_free_guidance(eps_c[b:b + 1], eps_u[b:b + 1], float(w_b[b]))
        expect_close(got[b:b + 1], one, atol=atol_for(eps_c.dtype, 100),
                     what=f"example {b} guided with the tensor w [B], against guiding it alone with the float "
                          f"w = {float(w_b[b]):g} (the handout: \"a tensor [B] (one guidance weight per example, "
                          "broadcast over the non-batch dims)\")")


@checks.add("classifier_free_guidance", "differentiable in eps_cond and eps_uncond; inputs unchanged",
            requires=("cfg_values",))
@given(data=st.data(), per_example_w=st.booleans())
def cfg_gradients(student, data, per_example_w):
    eps_c, eps_u = eps_pairs(data)
    B = eps_c.shape[0]
    w = (data.draw(tensors((B,), eps_c.dtype, low=-1, high=10), label="w") if per_example_w
         else data.draw(st.floats(-1, 10), label="w"))
    cot = data.draw(tensors(eps_c.shape, eps_c.dtype, low=-2, high=2), label="cotangent")
    inputs = {"eps_cond": eps_c, "eps_uncond": eps_u, "w": w}
    r = student.call("classifier_free_guidance", *inputs.values(), wrt=(eps_c, eps_u), cotangent=cot,
                     return_inputs=True)
    expect_tensor(r.value, shape=eps_c.shape, dtype=eps_c.dtype, what="guided eps (in eps_cond's dtype)")
    expect_gradients_match_values(student, "classifier_free_guidance", inputs, r, cot, ("eps_cond", "eps_uncond"),
                                  what="guided eps")
    expect_unchanged(r, eps_c, eps_u, *([w] if per_example_w else []))


# ---------------------------------------------------------------------- dynamic_threshold


@checks.add("dynamic_threshold", "inputs within [-1, 1] are unchanged (s is clipped at 1)",
            requires=("threshold_values",))
@given(data=st.data(), shape=data_shapes(min_dims=2), dtype=st.sampled_from([F32, F64]),
       percentile=st.sampled_from([None, 0.995]) | st.floats(0.0, 1.0))
def threshold_small_inputs(student, data, shape, dtype, percentile):
    x = data.draw(tensors(shape, dtype, low=-1, high=1), label="x0_hat")
    cot = data.draw(tensors(shape, dtype, low=-2, high=2), label="cotangent")
    args = (x,) if percentile is None else (x, percentile)
    r = student.call("dynamic_threshold", *args, wrt=(x,), cotangent=cot, return_inputs=True)
    expect_close(r.value, x, what="dynamic_threshold(x0_hat) for x0_hat in [-1, 1] (s = max(1, quantile) = 1: "
                 "clipping to [-1, 1] and dividing by 1 leave it unchanged)")
    inside = x.abs() < 1  # |x| = 1 is a kink of the clip
    g = r.grad(x)
    expect(g is not None, "no gradient reached x0_hat: keep the computation differentiable")
    expect_close(g[inside], cot[inside], what="gradient of the thresholded x0_hat wrt x0_hat (the identity here)")
    expect_unchanged(r, x)


def known_quantile_magnitudes(data, B: int, N: int):
    """|x0_hat| [B, N] whose quantile is known by construction, its level (None: the default) and the quantile.

    'progression': c_b * (1, 2, ..., N), whose linear-interpolation quantile at any p is c_b (1 + p (N - 1));
    'order statistic': N distinct random magnitudes with p = k / (N - 1), whose quantile is the k-th smallest
    (built as a cumulative sum of positive gaps, so the judge knows it without sorting)."""
    kind = data.draw(st.sampled_from(["progression", "order statistic"]) if N > 1 else st.just("progression"),
                     label="magnitudes")
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16), label="magnitude_seed"))
    if kind == "progression":
        percentile = data.draw(st.sampled_from([None, 0.995, 0.5, 1.0, 0.0]) | st.floats(0.0, 1.0),
                               label="percentile")
        p = 0.995 if percentile is None else percentile
        c = data.draw(tensors((B,), F64, low=0.05, high=3.0), label="c")
        sorted_mags = c[:, None] * (torch.arange(N, dtype=F64) + 1)
        quantile = c * (1 + p * (N - 1))
    else:
        k = data.draw(st.integers(0, N - 1), label="k (percentile = k / (N - 1))")
        percentile = k / (N - 1)
        sorted_mags = torch.cumsum(0.01 + 3 * torch.rand(B, N, generator=gen, dtype=F64), dim=1) / N ** 0.5
        quantile = sorted_mags[:, k]
    order = torch.stack([torch.randperm(N, generator=gen) for _ in range(B)])
    signs = torch.randint(0, 2, (B, N), generator=gen).double() * 2 - 1
    return torch.gather(sorted_mags, 1, order) * signs, percentile, quantile


@checks.add("dynamic_threshold", "clips to [-s, s] and divides by s = max(1, quantile(|x0_hat|, p)) per example",
            points=2)
@given(data=st.data(), shape=data_shapes(min_dims=2), dtype=st.sampled_from([F32, F64]))
def threshold_values(student, data, shape, dtype):
    B, N = shape[0], math.prod(shape[1:])
    mags, percentile, quantile = known_quantile_magnitudes(data, B, N)
    x = mags.reshape(shape).to(dtype)
    p = 0.995 if percentile is None else percentile
    s_b = per_example(quantile.clamp(min=1.0), x)
    expected = torch.minimum(torch.maximum(x.double(), -s_b), s_b) / s_b
    args = (x,) if percentile is None else (x, percentile)
    got = expect_tensor(student.dynamic_threshold(*args), shape=x.shape, dtype=x.dtype,
                        what=f"thresholded x0_hat for x0_hat = {x!r}")
    expect(bool((got.abs() <= 1).all()), f"values must lie in [-1, 1]; got max |value| {got.abs().max().item():.4g}")
    expect_close(got, expected.to(x.dtype),
                 what=f"thresholded x0_hat (percentile {p:g}; s = {quantile.clamp(min=1.0).tolist()}: per example, "
                      "over all its non-batch elements, the quantile of |x0_hat| with linear interpolation as "
                      "torch.quantile, at least 1)")


# ---------------------------------------------------------------------- inpaint_merge


def inpaint_draws(data, case: Case, all_start: bool = False):
    """x_prev, mask (float 0/1 shaped like y) and t_prev (-1 .. t, or all -1) for a case."""
    x_prev = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4), label="x_prev")
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16), label="mask_seed"))
    mask = torch.randint(0, 2, case.x0.shape, generator=gen).to(case.dtype)
    if all_start:
        t_prev = torch.full_like(case.t, -1)
    else:
        t_prev = data.draw(st.tuples(*[st.integers(-1, int(t)) for t in case.t]).map(
            lambda v: torch.tensor(v, dtype=torch.int64)), label="t_prev")
    return x_prev, mask, t_prev


INPAINT_PIN = "inpaint_matches_reference"  # hidden


@checks.add("inpaint_merge", "known pixels are your q_sample(y, t_prev, noise), unknown pixels keep x_prev", points=2,
            uses=("q_sample",), requires=(INPAINT_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def inpaint_values(student, data, case):
    """y = case.x0. Known pixels: your q_sample at t_prev (y itself where t_prev == -1), as the handout says;
    a consistency of your two functions, scored only when the hidden value pin of inpaint_merge passes."""
    x_prev, mask, t_prev = inpaint_draws(data, case)
    y = case.x0
    got = expect_tensor(student.inpaint_merge(x_prev, y, mask, t_prev, case.alpha_bars, case.noise),
                        shape=y.shape, dtype=case.dtype, what="merged x_prev")
    known = mask.bool()
    expect_close(got[~known], x_prev[~known], what=f"unknown pixels (mask == 0 at {(~known).nonzero().tolist()[:6]}: "
                 "the handout: \"pixels with mask == 0 keep the model's sample x_prev\")")
    noised = expect_tensor(student.q_sample(y, t_prev.clamp(min=0), case.noise, case.alpha_bars), shape=y.shape,
                           dtype=case.dtype, what="your q_sample(y, t_prev, noise, alpha_bars)")
    expected = torch.where(per_example(t_prev, y) < 0, y, noised)
    expect_close(got[known], expected[known], what=f"known pixels (mask == 1 at {known.nonzero().tolist()[:6]}: the "
                 "handout: \"known = q_sample(y, t_prev, noise, alpha_bars) (just y where t_prev == -1)\"), against "
                 "your q_sample")


@checks.add("inpaint_merge", "t_prev == -1 gives y itself on known pixels (never alpha_bars[-1])",
            requires=(INPAINT_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def inpaint_start(student, data, case):
    x_prev, mask, t_prev = inpaint_draws(data, case, all_start=True)
    got = expect_tensor(student.inpaint_merge(x_prev, case.x0, mask, t_prev, case.alpha_bars, case.noise),
                        shape=case.x0.shape, dtype=case.dtype, what="merged x_prev")
    expect_close(got, mask * case.x0 + (1 - mask) * x_prev,
                 what="merged x_prev at t_prev = -1 (the handout: \"just y where t_prev == -1\": known pixels must be "
                      "y, with no noise; beware alpha_bars[-1] is the last entry)")


@checks.add("inpaint_merge", "keeps x_prev's dtype, differentiable in x_prev, y and noise, inputs unchanged",
            requires=(INPAINT_PIN,))
@given(data=st.data(), case=cases(x_bound=3.0))
def inpaint_dtype(student, data, case):
    x_prev, mask, t_prev = inpaint_draws(data, case)
    cot = data.draw(tensors(x_prev.shape, case.dtype, low=-2, high=2), label="cotangent")
    inputs = {"x_prev": x_prev, "y": case.x0, "mask": mask, "t_prev": t_prev, "alpha_bars": case.alpha_bars,
              "noise": case.noise}
    r = student.call("inpaint_merge", *inputs.values(), wrt=(x_prev, case.x0, case.noise), cotangent=cot,
                     return_inputs=True)
    expect_tensor(r.value, shape=x_prev.shape, dtype=case.dtype, what="merged x_prev (in x_prev's dtype)")
    expect_gradients_match_values(student, "inpaint_merge", inputs, r, cot, ("x_prev", "y", "noise"),
                                  what="merged x_prev")
    expect_unchanged(r, *inputs.values())
