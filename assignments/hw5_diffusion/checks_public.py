"""hw5_diffusion public checks: properties that need no reference implementation.

Students run these with `dgm-grade check diffusion.py`. Expected values come
from definitions computed here in the judge, derived independently where the
spec allows: the posterior by conditioning the joint Gaussian of
(x_{t-1}, x_t) given x0, the ancestral chain's moments by propagating them
through the linear-Gaussian chain, DDIM by its consistency with the forward
process, dynamic thresholding on inputs whose quantiles are known in closed form.

Statistical checks state their false-fail probability; each uses a fixed
seed, so the same code always gets the same score.
"""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor, expect_tuple, expect_unchanged
from grader.strategies import tensors
from grader.worker.fixtures import build

from .models import (
    F64, ab_at, affine_eps, alpha_bars_of, ancestral_chain_moments, cases, data_shapes,
    ddim_sigma, fixed_eps, gaussian_eps_coefficients, noise_oracle, per_example, posterior_by_conditioning,
    q_sample_formula, x0_from_noise,
)

checks = Checks()

F32 = torch.float32
Z_FAIL = 6.0  # |N(0,1)| > 6 has probability 2e-9: the false-fail bound of a single z-test


def name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def atol_for(dtype: torch.dtype, scale: float = 1.0) -> float:
    """Absolute slack: float64 1e-9, float32 1e-5, times the size of the terms that cancel."""
    return (1e-9 if dtype == F64 else 1e-5) * max(1.0, scale)


def judge_vjp(fn, inputs: list[torch.Tensor], cot: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of <cot, fn(*inputs)> computed here in float64 (zeros where fn ignores an input)."""
    leaves = [x.detach().double().requires_grad_(True) for x in inputs]
    grads = torch.autograd.grad(fn(*leaves), leaves, cot.double(), allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]


def expect_grads(result, inputs: dict[str, torch.Tensor], expected: list[torch.Tensor], atol: float | None = None,
                 what: str = "output") -> None:
    """The worker's gradients for ``inputs`` (name -> tensor sent) match ``expected``."""
    for (label, x), g in zip(inputs.items(), expected):
        got = result.grad(x)
        if got is None and not bool(g.any()):
            continue  # the output does not depend on this input here: no gradient is fine
        expect(got is not None, f"no gradient of the {what} reached {label}: keep the computation differentiable "
               "(no .detach(), .item(), torch.no_grad() or numpy round trips)")
        expect_close(got, g.to(x.dtype), what=f"gradient of the {what} wrt {label}", atol=atol)


def random_affine(draw, T: int, event: tuple[int, ...], dtype: torch.dtype, bound: float = 1.5):
    """scale, shift [T, *event] for an affine_eps model with values in [-bound, bound]."""
    scale = draw(tensors((T, *event), dtype, low=-bound, high=bound))
    shift = draw(tensors((T, *event), dtype, low=-bound, high=bound))
    return scale, shift


def affine_prediction(scale: torch.Tensor, shift: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return scale.double()[t] * x_t.double() + shift.double()[t]


# ---------------------------------------------------------------------- linear_beta_schedule


@checks.add("linear_beta_schedule", "T values from beta_start to beta_end, evenly spaced (as torch.linspace)", points=2)
@given(T=st.integers(2, 1000), start=st.floats(1e-5, 1e-2), width=st.floats(0.0, 0.5), defaults=st.booleans())
def linear_values(student, T, start, width, defaults):
    if defaults:
        start, end = 1e-4, 0.02
        r = student.call("linear_beta_schedule", T, default_dtype=F64)
    else:
        end = start + width
        r = student.call("linear_beta_schedule", T, start, end, default_dtype=F64)
    betas = expect_tensor(r.value, shape=(T,), dtype=F64, what=f"linear_beta_schedule({T}) (default dtype float64)")
    expected = start + (end - start) * torch.arange(T, dtype=F64) / (T - 1)
    expect_close(betas[[0, -1]], torch.tensor([start, end], dtype=F64),
                 what="first and last betas (must be beta_start and beta_end" + (", defaults 1e-4 and 0.02)" if defaults else ")"))
    expect_close(betas, expected, what="betas (evenly spaced from beta_start to beta_end inclusive)", atol=1e-12)


@checks.add("linear_beta_schedule", "returned in the default dtype")
@given(T=st.integers(1, 50), dtype=st.sampled_from([F32, F64]))
def linear_dtype(student, T, dtype):
    r = student.call("linear_beta_schedule", T, 1e-3, 0.05, default_dtype=dtype)
    expect_tensor(r.value, shape=(T,), dtype=dtype,
                  what=f"linear_beta_schedule({T}) with torch's default dtype {name(dtype)}")


# ---------------------------------------------------------------------- cosine_beta_schedule

def cosine_alpha_bar(T: int, s: float) -> torch.Tensor:
    """Nichol & Dhariwal (2021), eq. 17: f(u)/f(0), f(u) = cos((u/T + s)/(1 + s) pi/2)^2, u = 0..T (float64)."""
    u = torch.arange(T + 1, dtype=F64)
    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    return f / f[0]


@st.composite
def cosine_args(draw):
    T = draw(st.integers(1, 1000))
    s = draw(st.sampled_from([None, 0.008]) | st.floats(1e-3, 0.05))
    max_beta = draw(st.sampled_from([None, 0.999]) | st.floats(0.02, 0.999))
    return T, s, max_beta


def call_cosine(student, T, s, max_beta, dtype):
    kwargs = {k: v for k, v in (("s", s), ("max_beta", max_beta)) if v is not None}
    r = student.call("cosine_beta_schedule", T, **kwargs, default_dtype=dtype)
    shown = ", ".join([str(T)] + [f"{k}={v:g}" for k, v in kwargs.items()])
    return expect_tensor(r.value, shape=(T,), dtype=dtype, what=f"cosine_beta_schedule({shown}) "
                         f"(default dtype {name(dtype)})"), shown


@checks.add("cosine_beta_schedule", "cumprod(1 - betas) is the cosine alpha_bar below the clip, "
            "betas are max_beta beyond it", points=2)
@given(args=cosine_args())
def cosine_alpha_bars(student, args):
    T, s, max_beta = args
    betas, shown = call_cosine(student, T, s, max_beta, F64)
    ab = cosine_alpha_bar(T, 0.008 if s is None else s)
    unclipped = 1 - ab[1:] / ab[:-1]  # increasing in t, so the clipped steps are a suffix
    cap = 0.999 if max_beta is None else max_beta
    k = int((unclipped < cap).sum())
    if k:
        expect_close(torch.cumprod(1 - betas[:k], 0), ab[1:k + 1], atol=1e-12,
                     what=f"alpha_bars = cumprod(1 - betas) of {shown} at the {k} steps below the clip "
                          f"(expected f(t+1)/f(0), f(u) = cos((u/T + s)/(1 + s) pi/2)^2)")
    if k < T:
        expect_close(betas[k:], torch.full((T - k,), cap, dtype=F64),
                     what=f"betas of {shown} at the last {T - k} steps (where 1 - alpha_bar_(t+1)/alpha_bar_t "
                          f">= max_beta = {cap:g}, betas must be clipped to max_beta)")


@checks.add("cosine_beta_schedule", "returned in the default dtype, within (0, max_beta]")
@given(args=cosine_args())
def cosine_float32(student, args):
    T, s, max_beta = args
    betas, shown = call_cosine(student, T, s, max_beta, F32)
    cap = 0.999 if max_beta is None else max_beta
    expect(bool((betas > 0).all()) and bool((betas <= torch.tensor(cap, dtype=F32)).all()),
           f"betas of {shown} must lie in (0, max_beta = {cap:g}]; got min {betas.min().item():.4g}, "
           f"max {betas.max().item():.4g}")
    ab = cosine_alpha_bar(T, 0.008 if s is None else s)
    k = int(((1 - ab[1:] / ab[:-1]) < cap).sum())
    expect_close(torch.cumprod(1 - betas.double()[:k], 0), ab[1:k + 1].to(F64), atol=1e-5, rtol=1e-3,
                 what=f"alpha_bars = cumprod(1 - betas) of {shown} below the clip (float32)")


# ---------------------------------------------------------------------- q_sample


@checks.add("q_sample", "exact for given noise: sqrt(alpha_bars[t]) x0 + sqrt(1 - alpha_bars[t]) noise", points=2)
@given(case=cases())
def q_sample_values(student, case):
    got = student.q_sample(case.x0, case.t, case.noise, case.alpha_bars)
    expected = q_sample_formula(case.x0, case.t, case.noise, case.alpha_bars)
    expect_close(got, expected.to(case.dtype), what=f"x_t ({name(case.dtype)} data, {name(case.alpha_bars.dtype)} "
                 f"schedule: the result takes the data's dtype)")


@checks.add("q_sample", "per-example coefficients broadcast over images [B, C, H, W]")
@given(case=cases(shape=st.tuples(st.integers(2, 4), st.integers(1, 3), st.integers(2, 4), st.integers(2, 4)),
                  dtype=F64))
def q_sample_images(student, case):
    got = expect_tensor(student.q_sample(case.x0, case.t, case.noise, case.alpha_bars), shape=case.x0.shape,
                        dtype=F64, what="x_t for image-shaped x0")
    for b in range(case.x0.shape[0]):
        expected = q_sample_formula(case.x0[b:b + 1], case.t[b:b + 1], case.noise[b:b + 1], case.alpha_bars)
        expect_close(got[b:b + 1], expected, what=f"x_t of example {b} (t = {case.t[b].item()}): reshape "
                     "alpha_bars[t] to [B, 1, 1, 1] so each example uses its own t")


@checks.add("q_sample", "differentiable: d x_t/d x0 = sqrt(alpha_bar), d x_t/d noise = sqrt(1 - alpha_bar); "
            "inputs unchanged")
@given(data=st.data(), case=cases(x_bound=3.0))
def q_sample_gradients(student, data, case):
    cot = data.draw(tensors(case.x0.shape, case.dtype, low=-2, high=2))
    r = student.call("q_sample", case.x0, case.t, case.noise, case.alpha_bars, wrt=(case.x0, case.noise),
                     cotangent=cot, return_inputs=True)
    expect_tensor(r.value, shape=case.x0.shape, dtype=case.dtype, what="x_t")
    g_x0, g_noise = r.grad(case.x0), r.grad(case.noise)
    expect(g_x0 is not None and g_noise is not None, "no gradient reached x0 or noise (keep x_t differentiable)")
    ab = per_example(ab_at(case.alpha_bars, case.t), case.x0)
    expect_close(g_x0, (cot.double() * ab.sqrt()).to(case.dtype), what="gradient wrt x0")
    expect_close(g_noise, (cot.double() * (1 - ab).sqrt()).to(case.dtype), what="gradient wrt noise")
    expect_unchanged(r, case.x0, case.t, case.noise, case.alpha_bars)


# ---------------------------------------------------------------------- q_posterior_mean_variance


@checks.add("q_posterior_mean_variance", "equals Gaussian conditioning of (x_{t-1}, x_t) given x0", points=3)
@given(data=st.data(), case=cases())
def posterior_values(student, data, case):
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-5, high=5))
    out = expect_tuple(student.q_posterior_mean_variance(case.x0, x_t, case.t, case.betas), 2,
                       what="q_posterior_mean_variance(x0, x_t, t, betas)")
    mean, var = posterior_by_conditioning(case.x0, x_t, case.t, case.betas)
    atol = atol_for(case.dtype, float(case.x0.abs().max() + x_t.abs().max()))
    dtypes = f"({name(case.dtype)} data, {name(case.betas.dtype)} betas)"
    expect_close(out[0], mean.to(case.dtype), what=f"posterior mean {dtypes}", atol=atol)
    expect_close(out[1], var.to(case.dtype), what=f"posterior variance {dtypes}, broadcastable to x_t",
                 broadcast=True, atol=atol_for(case.dtype))


@checks.add("q_posterior_mean_variance", "is (x0, 0) at t == 0 (never alpha_bars[-1])")
@given(data=st.data(), case=cases(max_T=30))
def posterior_at_zero(student, data, case):
    B = case.x0.shape[0]
    t = torch.zeros(B, dtype=torch.int64)
    if B > 1:  # some later steps in the same batch
        t[1:] = case.t[1:]
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-5, high=5))
    mean, var = expect_tuple(student.q_posterior_mean_variance(case.x0, x_t, t, case.betas), 2)
    mean = expect_tensor(mean, shape=case.x0.shape, dtype=case.dtype, what="posterior mean")
    var = expect_tensor(var, dtype=case.dtype, what="posterior variance")
    zero = t == 0
    expect_close(mean[zero], case.x0[zero], what="posterior mean where t == 0 (must be x0)", atol=atol_for(case.dtype))
    try:
        var_full = var.expand(case.x0.shape)
    except RuntimeError:
        raise AssertionError(f"posterior variance: shape {list(var.shape)} does not broadcast to x_t "
                             f"{list(case.x0.shape)}") from None
    expect_close(var_full[zero], torch.zeros_like(case.x0[zero]), what="posterior variance where t == 0 (must be 0)",
                 atol=1e-12)


@checks.add("q_posterior_mean_variance", "keeps x_t's dtype, differentiable mean, inputs unchanged")
@given(data=st.data(), case=cases())
def posterior_dtype(student, data, case):
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-5, high=5))
    cot = data.draw(tensors(case.x0.shape, case.dtype, low=-2, high=2))
    r = student.call("q_posterior_mean_variance", case.x0, x_t, case.t, case.betas, wrt=(case.x0, x_t), output=(0,),
                     cotangent=cot, return_inputs=True)
    mean, var = expect_tuple(r.value, 2)
    expect_tensor(mean, shape=case.x0.shape, dtype=case.dtype, what="posterior mean")
    expect_tensor(var, dtype=case.dtype, what="posterior variance")
    expected = judge_vjp(lambda a, b: posterior_by_conditioning(a, b, case.t, case.betas)[0], [case.x0, x_t], cot)
    expect_grads(r, {"x0": case.x0, "x_t": x_t}, expected, what="posterior mean")
    expect_unchanged(r, case.x0, x_t, case.t, case.betas)


# ---------------------------------------------------------------------- predict_x0_from_noise


@checks.add("predict_x0_from_noise", "inverts q_sample: recovers x0 (unclipped) from x_t and the noise", points=2)
@given(case=cases(x_bound=20.0))
def x0_inverts(student, case):
    x_t = q_sample_formula(case.x0, case.t, case.noise, case.alpha_bars).to(case.dtype)
    got = student.predict_x0_from_noise(x_t, case.t, case.noise, case.alpha_bars)
    if case.dtype == F64:
        expect_close(got, case.x0, what="x0_hat for x_t = q_sample(x0, t, noise) (must be x0 exactly, no clipping)",
                     atol=1e-8)
    else:  # rounding x_t to float32 moves the exact answer: solve for the x0 of the rounded x_t
        ab = ab_at(case.alpha_bars, case.t)
        scale = float((x_t.abs().max() + case.noise.abs().max()) / ab.min().sqrt())
        expect_close(got, x0_from_noise(x_t, case.t, case.noise, case.alpha_bars).to(F32),
                     what="x0_hat (float32 data: the result takes the data's dtype)", atol=atol_for(F32, scale))


@checks.add("predict_x0_from_noise", "keeps x_t's dtype, differentiable, inputs unchanged")
@given(case=cases(x_bound=3.0))
def x0_dtype(student, case):
    x_t = q_sample_formula(case.x0, case.t, case.noise, case.alpha_bars).to(case.dtype)
    r = student.call("predict_x0_from_noise", x_t, case.t, case.noise, case.alpha_bars, wrt=(x_t,), return_inputs=True)
    expect_tensor(r.value, shape=x_t.shape, dtype=case.dtype, what="x0_hat")
    g = r.grad(x_t)
    expect(g is not None, "no gradient reached x_t (keep x0_hat differentiable)")
    ab = per_example(ab_at(case.alpha_bars, case.t), x_t)
    expect_close(g, (1 / ab.sqrt()).expand(x_t.shape).to(case.dtype), what="d x0_hat / d x_t (= 1/sqrt(alpha_bar))")
    expect_unchanged(r, x_t, case.t, case.noise, case.alpha_bars)


# ---------------------------------------------------------------------- noise_prediction_loss


@checks.add("noise_prediction_loss", "zero for the oracle that recovers the noise from x_t = q_sample(x0, t, noise)",
            points=2)
@given(case=cases())
def loss_oracle(student, case):
    """The oracle model returns (x_t - sqrt(ab[t]) x0) / sqrt(1 - ab[t]): the true noise only if the
    model is called on q_sample(x0, t, noise) with the same t."""
    loss = student.noise_prediction_loss(noise_oracle(case.x0, case.alpha_bars), case.x0, case.t, case.noise,
                                         case.alpha_bars)
    loss = expect_tensor(loss, shape=(), dtype=case.dtype, what="loss (a scalar in the data's dtype)")
    bound = 1e-16 if case.dtype == F64 else 1e-7
    expect(abs(loss.item()) <= bound,
           f"loss with a model that recovers the true noise from x_t must be 0; got {loss.item():.4g}. "
           "Call model(q_sample(x0, t, noise, alpha_bars), t).")


@st.composite
def loss_inputs(draw, dtype=None):
    case = draw(cases(dtype=dtype, x_bound=3.0))
    event = tuple(case.x0.shape[1:])
    if event and draw(st.booleans()):  # one coefficient per channel, broadcast over the rest
        event = (event[0],) + (1,) * (len(event) - 1)
    scale, shift = random_affine(draw, len(case.betas), event, case.dtype)
    return case, scale, shift


@checks.add("noise_prediction_loss", "mean over all elements of (noise - model(x_t, t))^2", points=2)
@given(inputs=loss_inputs())
def loss_values(student, inputs):
    case, scale, shift = inputs
    loss = student.noise_prediction_loss(affine_eps(scale, shift), case.x0, case.t, case.noise, case.alpha_bars)
    x_t = q_sample_formula(case.x0, case.t, case.noise, case.alpha_bars)
    expected = ((case.noise.double() - affine_prediction(scale, shift, x_t, case.t)) ** 2).mean()
    expect_close(loss, expected.to(case.dtype), what=f"loss ({name(case.dtype)}) with the model "
                 "eps_hat = scale[t] * x_t + shift[t] (mean, not sum, of the squared errors)")


@checks.add("noise_prediction_loss", "equals the MSE to a model's fixed output")
@given(data=st.data(), case=cases(x_bound=3.0))
def loss_fixed_output(student, data, case):
    out = data.draw(tensors(case.x0.shape, case.dtype, low=-3, high=3))
    loss = student.noise_prediction_loss(fixed_eps(out), case.x0, case.t, case.noise, case.alpha_bars)
    expected = ((case.noise.double() - out.double()) ** 2).mean()
    expect_close(loss, expected.to(case.dtype), what="loss with a model whose output is known: mean((noise - out)^2)")


@checks.add("noise_prediction_loss", "differentiable in the model's parameters, x0 and noise; inputs unchanged")
@given(inputs=loss_inputs(dtype=F64))
def loss_gradients(student, inputs):
    case, scale, shift = inputs
    model = affine_eps(scale, shift)
    r = student.call("noise_prediction_loss", model, case.x0, case.t, case.noise, case.alpha_bars,
                     wrt=(model, case.x0, case.noise), return_inputs=True)
    expect_tensor(r.value, shape=(), dtype=F64, what="loss")
    grads = r.grad(model) or {}
    judge_model = build("affine_eps", {}, {"scale": scale.clone(), "shift": shift.clone()})
    x0, noise = case.x0.clone().requires_grad_(True), case.noise.clone().requires_grad_(True)
    x_t = q_sample_formula(x0, case.t, noise, case.alpha_bars)
    ((noise - judge_model(x_t, case.t)) ** 2).mean().backward()
    expect_grads(r, {"x0": case.x0, "noise": case.noise}, [x0.grad, noise.grad], what="loss")
    for pname, p in judge_model.named_parameters():
        expect(grads.get(pname) is not None, f"no gradient reached the model's parameter {pname!r}: keep the loss "
               "differentiable (no .item(), .detach() or torch.no_grad())")
        expect_close(grads[pname], p.grad, what=f"d loss / d {pname}")
    expect_unchanged(r, case.x0, case.t, case.noise, case.alpha_bars)


# ---------------------------------------------------------------------- p_sample_step


@st.composite
def step_inputs(draw, dtype=None, t_zero=False):
    """(case, x_t, scale, shift) with an affine noise model."""
    case = draw(cases(dtype=dtype, x_bound=3.0))
    x_t = draw(tensors(case.x0.shape, case.dtype, low=-4, high=4))
    scale, shift = random_affine(draw, len(case.betas), tuple(case.x0.shape[1:]), case.dtype, bound=1.0)
    return case, x_t, scale, shift


def ddpm_step(betas, x_t, t, noise, scale, shift) -> torch.Tensor:
    """Posterior (by conditioning) at x0_hat(x_t, eps_hat), plus sqrt(var) noise, in float64."""
    eps = affine_prediction(scale, shift, x_t, t)
    x0_hat = x0_from_noise(x_t, t, eps, alpha_bars_of(betas))
    mean, var = posterior_by_conditioning(x0_hat, x_t, t, betas)
    return mean + var.sqrt() * noise.double()


def ddpm_step_expected(case, x_t, scale, shift, t) -> tuple[torch.Tensor, float]:
    """ddpm_step with the case's noise, and an absolute slack for float32."""
    ab = alpha_bars_of(case.betas)
    eps = affine_prediction(scale, shift, x_t, t)
    scale_f = float((x_t.abs().max() + eps.abs().max() + case.noise.abs().max()) / ab_at(ab, t).min().sqrt())
    return ddpm_step(case.betas, x_t, t, case.noise, scale, shift), atol_for(case.dtype, scale_f)


@checks.add("p_sample_step", "posterior mean at the predicted x0, plus sqrt(posterior variance) * noise", points=3)
@given(inputs=step_inputs())
def p_sample_values(student, inputs):
    case, x_t, scale, shift = inputs
    got = student.p_sample_step(affine_eps(scale, shift), x_t, case.t, case.betas, case.noise)
    expected, atol = ddpm_step_expected(case, x_t, scale, shift, case.t)
    expect_close(got, expected.to(case.dtype), atol=atol,
                 what=f"x_(t-1) ({name(case.dtype)} data, {name(case.betas.dtype)} betas; model "
                      "eps_hat = scale[t] * x_t + shift[t])")


@checks.add("p_sample_step", "adds no noise at t == 0: returns the predicted x0")
@given(inputs=step_inputs())
def p_sample_at_zero(student, inputs):
    case, x_t, scale, shift = inputs
    t = torch.zeros_like(case.t)
    got = student.p_sample_step(affine_eps(scale, shift), x_t, t, case.betas, case.noise)
    eps = affine_prediction(scale, shift, x_t, t)
    x0_hat = x0_from_noise(x_t, t, eps, alpha_bars_of(case.betas))
    expect_close(got, x0_hat.to(case.dtype), what="x_(t-1) at t == 0 (the mean (x_t - beta_0/sqrt(1 - alpha_bar_0) "
                 "eps_hat)/sqrt(alpha_0), no noise; beware alpha_bars[t - 1] at t == 0)",
                 atol=atol_for(case.dtype, float(x_t.abs().max() + eps.abs().max()) * 100))


@checks.add("p_sample_step", "keeps x_t's dtype, differentiable, inputs unchanged")
@given(data=st.data(), inputs=step_inputs())
def p_sample_dtype(student, data, inputs):
    case, x_t, scale, shift = inputs
    cot = data.draw(tensors(x_t.shape, case.dtype, low=-2, high=2))
    r = student.call("p_sample_step", affine_eps(scale, shift), x_t, case.t, case.betas, case.noise,
                     wrt=(x_t, case.noise), cotangent=cot, return_inputs=True)
    expect_tensor(r.value, shape=x_t.shape, dtype=case.dtype, what="x_(t-1)")
    expected = judge_vjp(lambda x, z: ddpm_step(case.betas, x, case.t, z, scale, shift), [x_t, case.noise], cot)
    expect_grads(r, {"x_t": x_t, "noise": case.noise}, expected, what="x_(t-1)",
                 atol=atol_for(case.dtype, float(expected[0].abs().max()) * 100))
    expect_unchanged(r, x_t, case.t, case.betas, case.noise)


# The Gaussian data of the sampling check, and its chain.
CHAIN_MU = torch.tensor([1.5, -0.5, 0.0], dtype=F64)
CHAIN_VAR = torch.tensor([0.25, 2.0, 0.01], dtype=F64)
CHAIN_BETAS = torch.linspace(1e-3, 0.25, 40, dtype=F64)
CHAIN_N = 50_000


@checks.add("p_sample_step", "an ancestral chain with the exact predictor of Gaussian data has the chain's exact "
            "mean and variance", points=3, timeout=60)
def p_sample_chain(student):
    """Data ~ N(mu, diag s^2) in 3 dims; the exact noise predictor is affine, so each step is
    x_(t-1) = a_t x_t + c_t + sigma_t z and the chain's mean and variance recurse exactly
    (models.ancestral_chain_moments); they are NOT the data moments (a 40-step chain misses those).
    50000 chains in float64, x_(T-1) ~ N(0, I), one call per step with noise drawn here.
    Per dim: a 6-sigma z-test of the mean (2e-9) and a two-sided chi-square test of the variance at
    1e-9 per tail: false-fail probability < 1.2e-8 in all."""
    T, D = len(CHAIN_BETAS), len(CHAIN_MU)
    scale, shift = gaussian_eps_coefficients(CHAIN_MU, CHAIN_VAR, alpha_bars_of(CHAIN_BETAS))
    model = affine_eps(scale, shift)
    gen = torch.Generator().manual_seed(12345)
    x = torch.randn(CHAIN_N, D, generator=gen, dtype=F64)
    for step in range(T - 1, -1, -1):
        z = torch.randn(CHAIN_N, D, generator=gen, dtype=F64)
        t = torch.full((CHAIN_N,), step, dtype=torch.int64)
        x = expect_tensor(student.p_sample_step(model, x, t, CHAIN_BETAS, z), shape=(CHAIN_N, D), dtype=F64,
                          what=f"x_(t-1) at step t = {step}")
    m, v = ancestral_chain_moments(scale, shift, CHAIN_BETAS, torch.zeros(D, dtype=F64), torch.ones(D, dtype=F64))
    got_m, got_v = x.mean(0), x.var(0)
    lo, hi = stats.chi2.ppf(1e-9, CHAIN_N - 1) / (CHAIN_N - 1), stats.chi2.ppf(1 - 1e-9, CHAIN_N - 1) / (CHAIN_N - 1)
    for d in range(D):
        se = math.sqrt(v[d] / CHAIN_N)
        expect(abs(got_m[d] - m[d]) <= Z_FAIL * se,
               f"dim {d}: the chain's sample mean is {got_m[d]:.4f}; the exact mean of this {T}-step chain is "
               f"{m[d]:.4f} ± {se:.2g} (data mean {CHAIN_MU[d]:g}): check the step's mean")
        expect(lo <= got_v[d] / v[d] <= hi,
               f"dim {d}: the chain's sample variance is {got_v[d]:.4f}; the exact variance of this {T}-step chain is "
               f"{v[d]:.4f} (ratio within [{lo:.3f}, {hi:.3f}] expected; data variance {CHAIN_VAR[d]:g}): check the "
               "noise scale sqrt(beta_tilde_t) and that no noise is added at t == 0")


# ---------------------------------------------------------------------- ddim_step


@st.composite
def ddim_inputs(draw, dtype=None, prev="any"):
    """(case, t_prev): t_prev in -1 .. t-1 ('any'), all -1 ('start'), or t - 1 ('consecutive')."""
    case = draw(cases(dtype=dtype, x_bound=3.0))
    if prev == "start":
        t_prev = torch.full_like(case.t, -1)
    elif prev == "consecutive":
        t_prev = case.t - 1
    else:
        t_prev = torch.tensor([draw(st.integers(-1, int(t) - 1)) for t in case.t], dtype=torch.int64)
    return case, t_prev


@checks.add("ddim_step", "eta = 0 is deterministic and recovers x0 with the true noise (t_prev = -1)", points=2)
@given(data=st.data(), inputs=ddim_inputs(prev="start"))
def ddim_recovers_x0(student, data, inputs):
    case, t_prev = inputs
    x_t = q_sample_formula(case.x0, case.t, case.noise, case.alpha_bars).to(case.dtype)
    oracle = noise_oracle(case.x0, case.alpha_bars)
    other = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4))
    atol = atol_for(case.dtype, float(x_t.abs().max() / ab_at(case.alpha_bars, case.t).min().sqrt()) * 10)
    for noise in (case.noise, other):
        got = student.ddim_step(oracle, x_t, case.t, t_prev, case.alpha_bars, 0.0, noise)
        expect_close(got, case.x0, atol=atol,
                     what="x_prev from t_prev = -1 (alpha_bar = 1) with eta = 0 and the true noise (must be x0, "
                          "whatever the noise argument)")


@checks.add("ddim_step", "eta = 0 with the true noise lands on q_sample(x0, t_prev, noise)", points=2)
@given(inputs=ddim_inputs())
def ddim_consistent(student, inputs):
    case, t_prev = inputs
    x_t = q_sample_formula(case.x0, case.t, case.noise, case.alpha_bars).to(case.dtype)
    got = student.ddim_step(noise_oracle(case.x0, case.alpha_bars), x_t, case.t, t_prev, case.alpha_bars, 0.0,
                            torch.zeros_like(case.x0))
    expected = q_sample_formula(case.x0, t_prev, case.noise, case.alpha_bars)
    atol = atol_for(case.dtype, float(x_t.abs().max() / ab_at(case.alpha_bars, case.t).min().sqrt()) * 10)
    expect_close(got, expected.to(case.dtype), atol=atol,
                 what="x_prev with eta = 0 and the true noise (= sqrt(a_prev) x0 + sqrt(1 - a_prev) noise; "
                      "a_prev = 1 where t_prev == -1)")


@checks.add("ddim_step", "eta = 1 on consecutive steps is the DDPM posterior step", points=2)
@given(data=st.data(), inputs=ddim_inputs(prev="consecutive"))
def ddim_eta_one(student, data, inputs):
    case, t_prev = inputs
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4))
    scale, shift = random_affine(data.draw, len(case.betas), tuple(case.x0.shape[1:]), case.dtype, bound=1.0)
    got = student.ddim_step(affine_eps(scale, shift), x_t, case.t, t_prev, case.alpha_bars, 1.0, case.noise)
    expected, atol = ddpm_step_expected(case, x_t, scale, shift, case.t)
    expect_close(got, expected.to(case.dtype), atol=atol * 10,
                 what="x_prev with eta = 1 and t_prev = t - 1 (sigma = eta sqrt((1 - a_prev)/(1 - a)) "
                      "sqrt(1 - a/a_prev) makes sigma^2 the posterior variance)")


@checks.add("ddim_step", "any eta: sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma noise", points=2)
@given(data=st.data(), inputs=ddim_inputs(), eta=st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0.0, 1.0))
def ddim_any_eta(student, data, inputs, eta):
    case, t_prev = inputs
    x_t = q_sample_formula(case.x0, case.t, case.noise, case.alpha_bars).to(case.dtype)
    z = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4))
    got = student.ddim_step(noise_oracle(case.x0, case.alpha_bars), x_t, case.t, t_prev, case.alpha_bars, eta, z)
    a, a_prev = (per_example(ab_at(case.alpha_bars, s), x_t) for s in (case.t, t_prev))
    sigma = ddim_sigma(a, a_prev, eta)
    expected = (a_prev.sqrt() * case.x0.double() + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * case.noise.double()
                + sigma * z.double())
    atol = atol_for(case.dtype, float(x_t.abs().max() / a.min().sqrt()) * 10)
    expect_close(got, expected.to(case.dtype), atol=atol,
                 what=f"x_prev with eta = {eta:g} and the true noise as the model's prediction")


@checks.add("ddim_step", "keeps x_t's dtype, differentiable (through the model too), inputs unchanged")
@given(data=st.data(), inputs=ddim_inputs(), eta=st.floats(0.0, 1.0))
def ddim_dtype(student, data, inputs, eta):
    """An affine model eps_hat = scale[t] x_t + shift[t], so x_prev depends on x_t through x0_hat
    and through eps_hat (with the noise oracle x0_hat is x0 whatever x_t: a detached x0_hat would
    go unseen). The judge differentiates the definition in float64: wrt x_t, noise and the model's
    scale and shift."""
    case, t_prev = inputs
    x_t = data.draw(tensors(case.x0.shape, case.dtype, low=-4, high=4))
    cot = data.draw(tensors(x_t.shape, case.dtype, low=-2, high=2))
    scale, shift = random_affine(data.draw, len(case.alpha_bars), tuple(x_t.shape[1:]), case.dtype, bound=1.0)
    model = affine_eps(scale, shift)
    r = student.call("ddim_step", model, x_t, case.t, t_prev, case.alpha_bars, eta, case.noise,
                     wrt=(model, x_t, case.noise), cotangent=cot, return_inputs=True)
    expect_tensor(r.value, shape=x_t.shape, dtype=case.dtype, what="x_prev")
    a, a_prev = (per_example(ab_at(case.alpha_bars, s), x_t) for s in (case.t, t_prev))
    sigma = ddim_sigma(a, a_prev, eta)

    def x_prev(x, z, sc, sh):
        eps = affine_prediction(sc, sh, x, case.t)
        x0_hat = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps + sigma * z

    d_x, d_noise, d_scale, d_shift = judge_vjp(x_prev, [x_t, case.noise, scale, shift], cot)
    size = float(cot.abs().max() / a.min().sqrt()) * 10 * len(x_t) * (1 + float(x_t.abs().max()))
    expect_grads(r, {"x_t": x_t, "noise": case.noise}, [d_x, d_noise], what="x_prev", atol=atol_for(case.dtype, size))
    grads = r.grad(model) or {}
    for pname, expected in (("scale", d_scale), ("shift", d_shift)):
        expect(grads.get(pname) is not None, f"no gradient of x_prev reached the model's {pname}: keep the step "
               "differentiable (no .detach(), .item() or torch.no_grad())")
        expect_close(grads[pname], expected.to(case.dtype), what=f"gradient of x_prev wrt the model's {pname}",
                     atol=atol_for(case.dtype, size))
    expect_unchanged(r, x_t, case.t, t_prev, case.alpha_bars, case.noise)


# ---------------------------------------------------------------------- classifier_free_guidance


@st.composite
def guidance_inputs(draw, dtype=None):
    shape = draw(data_shapes())
    dtype = draw(st.sampled_from([F32, F64]) if dtype is None else st.just(dtype))
    eps_c = draw(tensors(shape, dtype, low=-5, high=5))
    eps_u = draw(tensors(shape, dtype, low=-5, high=5))
    return eps_c, eps_u


@checks.add("classifier_free_guidance", "w = 0 gives eps_uncond and w = 1 gives eps_cond (float and tensor w)")
@given(inputs=guidance_inputs())
def cfg_edges(student, inputs):
    eps_c, eps_u = inputs
    B = eps_c.shape[0]
    for w, target, label in ((0.0, eps_u, "eps_uncond"), (1.0, eps_c, "eps_cond")):
        expect_close(student.classifier_free_guidance(eps_c, eps_u, w), target, what=f"guidance with w = {w:g} "
                     f"(must be {label})")
        w_t = torch.full((B,), w, dtype=eps_c.dtype)
        expect_close(student.classifier_free_guidance(eps_c, eps_u, w_t), target,
                     what=f"guidance with w = torch.full([B], {w:g}) (must be {label})")


@checks.add("classifier_free_guidance", "eps_uncond + w (eps_cond - eps_uncond) for a float w or a per-example w [B]",
            points=2)
@given(data=st.data(), inputs=guidance_inputs(), per_example_w=st.booleans())
def cfg_values(student, data, inputs, per_example_w):
    eps_c, eps_u = inputs
    B = eps_c.shape[0]
    if per_example_w:
        w = data.draw(tensors((B,), eps_c.dtype, low=-1, high=10))
        w_b = per_example(w.double(), eps_c)
    else:
        w = data.draw(st.floats(-1, 10))
        w_b = torch.tensor(w, dtype=F64)
    expected = eps_u.double() + w_b * (eps_c.double() - eps_u.double())
    cot = data.draw(tensors(eps_c.shape, eps_c.dtype, low=-2, high=2))
    r = student.call("classifier_free_guidance", eps_c, eps_u, w, wrt=(eps_c, eps_u), cotangent=cot,
                     return_inputs=True)
    expect_close(r.value, expected.to(eps_c.dtype), atol=atol_for(eps_c.dtype, 100),
                 what="guided eps" + (" (w [B]: reshape to [B, 1, ..., 1])" if per_example_w else ""))
    expect_grads(r, {"eps_cond": eps_c, "eps_uncond": eps_u}, [w_b * cot.double(), (1 - w_b) * cot.double()],
                 what="guided eps", atol=atol_for(eps_c.dtype, 10))
    expect_unchanged(r, eps_c, eps_u, *([w] if per_example_w else []))


# ---------------------------------------------------------------------- dynamic_threshold


@checks.add("dynamic_threshold", "inputs within [-1, 1] are unchanged (s is clipped at 1)")
@given(data=st.data(), shape=data_shapes(min_dims=2), dtype=st.sampled_from([F32, F64]),
       percentile=st.sampled_from([None, 0.995]) | st.floats(0.0, 1.0))
def threshold_small_inputs(student, data, shape, dtype, percentile):
    x = data.draw(tensors(shape, dtype, low=-1, high=1))
    cot = data.draw(tensors(shape, dtype, low=-2, high=2))
    args = (x,) if percentile is None else (x, percentile)
    r = student.call("dynamic_threshold", *args, wrt=(x,), cotangent=cot, return_inputs=True)
    expect_close(r.value, x, what="dynamic_threshold(x) for x in [-1, 1] (s = max(1, quantile) = 1: unchanged)")
    inside = x.abs() < 1  # |x| = 1 is a kink of the clip
    g = r.grad(x)
    expect(g is not None, "no gradient reached x0_hat: keep the computation differentiable")
    expect_close(g[inside], cot[inside], what="gradient of the thresholded x0_hat wrt x0_hat (the identity here)")
    expect_unchanged(r, x)


@st.composite
def threshold_inputs(draw):
    """x whose |values| in example b are c_b * (1, 2, ..., N) in a random order, with random signs:
    the linear-interpolation quantile at p is exactly c_b (1 + p (N - 1))."""
    shape = draw(data_shapes(min_dims=2))
    dtype = draw(st.sampled_from([F32, F64]))
    B, N = shape[0], math.prod(shape[1:])
    c = draw(tensors((B,), F64, low=0.05, high=3.0))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    mags = torch.stack([torch.randperm(N, generator=gen) for _ in range(B)]).double() + 1
    signs = torch.randint(0, 2, (B, N), generator=gen).double() * 2 - 1
    x = (c[:, None] * mags * signs).reshape(shape)
    percentile = draw(st.sampled_from([None, 0.995, 0.5, 1.0, 0.0]) | st.floats(0.0, 1.0))
    return x.to(dtype), c, N, percentile


@checks.add("dynamic_threshold", "clips to [-s, s] and divides by s = max(1, quantile(|x0_hat|, p)) per example",
            points=2)
@given(inputs=threshold_inputs())
def threshold_values(student, inputs):
    x, c, N, percentile = inputs
    p = 0.995 if percentile is None else percentile
    s = (c * (1 + p * (N - 1))).clamp(min=1.0)
    s_b = per_example(s, x)
    expected = torch.minimum(torch.maximum(x.double(), -s_b), s_b) / s_b
    args = (x,) if percentile is None else (x, percentile)
    got = expect_tensor(student.dynamic_threshold(*args), shape=x.shape, dtype=x.dtype, what="thresholded x0_hat")
    expect(bool((got.abs() <= 1).all()), f"values must lie in [-1, 1]; got max |value| {got.abs().max().item():.4g}")
    expect_close(got, expected.to(x.dtype),
                 what=f"thresholded x0_hat (percentile {p:g}; per example, over all its non-batch elements, the "
                      "quantile of |x0_hat| with linear interpolation as torch.quantile)")


# ---------------------------------------------------------------------- inpaint_merge


@st.composite
def inpaint_inputs(draw, dtype=None, all_start=False):
    case = draw(cases(dtype=dtype, x_bound=3.0))
    x_prev = draw(tensors(case.x0.shape, case.dtype, low=-4, high=4))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    mask = torch.randint(0, 2, case.x0.shape, generator=gen).to(case.dtype)
    if all_start:
        t_prev = torch.full_like(case.t, -1)
    else:
        t_prev = torch.tensor([draw(st.integers(-1, int(t))) for t in case.t], dtype=torch.int64)
    return case, x_prev, mask, t_prev


@checks.add("inpaint_merge", "known pixels are q_sample(y, t_prev, noise), unknown pixels keep x_prev", points=2)
@given(inputs=inpaint_inputs())
def inpaint_values(student, inputs):
    case, x_prev, mask, t_prev = inputs
    y = case.x0
    got = expect_tensor(student.inpaint_merge(x_prev, y, mask, t_prev, case.alpha_bars, case.noise),
                        shape=y.shape, dtype=case.dtype, what="merged x_prev")
    known = mask.bool()
    expect_close(got[~known], x_prev[~known], what="unknown pixels (mask == 0: must keep x_prev)")
    expected = q_sample_formula(y, t_prev, case.noise, case.alpha_bars).to(case.dtype)
    expect_close(got[known], expected[known], what="known pixels (mask == 1: q_sample(y, t_prev, noise), "
                 "or y itself where t_prev == -1)")


@checks.add("inpaint_merge", "t_prev == -1 gives y itself on known pixels (never alpha_bars[-1])")
@given(inputs=inpaint_inputs(all_start=True))
def inpaint_start(student, inputs):
    case, x_prev, mask, t_prev = inputs
    got = expect_tensor(student.inpaint_merge(x_prev, case.x0, mask, t_prev, case.alpha_bars, case.noise),
                        shape=case.x0.shape, dtype=case.dtype, what="merged x_prev")
    expect_close(got, mask * case.x0 + (1 - mask) * x_prev,
                 what="merged x_prev at t_prev = -1 (known pixels must be y, with no noise)")


@checks.add("inpaint_merge", "keeps x_prev's dtype, differentiable, inputs unchanged")
@given(data=st.data(), inputs=inpaint_inputs())
def inpaint_dtype(student, data, inputs):
    case, x_prev, mask, t_prev = inputs
    cot = data.draw(tensors(x_prev.shape, case.dtype, low=-2, high=2))
    r = student.call("inpaint_merge", x_prev, case.x0, mask, t_prev, case.alpha_bars, case.noise,
                     wrt=(x_prev, case.x0, case.noise), cotangent=cot, return_inputs=True)
    expect_tensor(r.value, shape=x_prev.shape, dtype=case.dtype, what="merged x_prev")
    expected = judge_vjp(lambda xp, y, z: mask.double() * q_sample_formula(y, t_prev, z, case.alpha_bars)
                         + (1 - mask.double()) * xp, [x_prev, case.x0, case.noise], cot)
    expect_grads(r, {"x_prev": x_prev, "y": case.x0, "noise": case.noise}, expected, what="merged x_prev")
    expect_unchanged(r, x_prev, case.x0, mask, t_prev, case.alpha_bars, case.noise)
