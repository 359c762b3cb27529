"""hw6_score hidden checks: comparisons with reference/score.py, and a training run.

Graded only (visibility after_published); never shipped to students. These pin
each function's value on generic inputs (the definitions, which public checks may
not implement): the reference is evaluated in float64 on the same fixtures built
here, and tolerances scale with the terms the value is summed from.
"""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks, Fixture
from grader.compare import expect, expect_close, expect_tensor, expect_training_signal, expect_tuple, expect_unchanged
from grader.strategies import dtypes, tensors
from grader.worker.fixtures.score import MLPScore
from reference import score as ref

from .checks_public import DSM_PINS, SIGMA_MIN, T_MIN, batch_shapes, draw_gaussian_score, levels, name
from .models import built, citing, mlp_energy, mlp_score, per_example, slack, vp_betas

checks = Checks(hidden=True)


def as64(c):
    return c.double() if isinstance(c, torch.Tensor) else c


def mlp_score_for(x: torch.Tensor, model_seed: int) -> Fixture:
    """A random tanh MLP score (weights from model_seed) for the batch x [B, *event]."""
    return mlp_score(x[0].numel(), [8], x.dtype, torch.Generator().manual_seed(model_seed))


def dsm_terms(model, x, sigma, noise, *, magnitude: bool = False) -> torch.Tensor:
    """0.5 (score(x + sigma noise, sigma) + noise / sigma)^2 / B per element, float64: the loss is their
    sum. magnitude: |score| + |noise / sigma| in place of the residual, whose gradients bound what
    rounding in the residual can cost."""
    x, noise = x.double(), noise.double()
    s = per_example(sigma, x)
    score = model(x + s * noise, as64(sigma))
    residual = score.abs() + (noise / s).abs() if magnitude else score + noise / s
    return 0.5 * residual ** 2 / x.shape[0]


def gradient_sizes(terms: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """For each parameter, sum over elements e of |d terms[e] / d param|: the size of what its
    gradient adds up, so tolerances scale with it (the sum itself may cancel to nearly 0)."""
    flat = terms.reshape(-1)
    rows = torch.eye(flat.numel(), dtype=flat.dtype)
    per_element = torch.autograd.grad(flat, params, grad_outputs=rows, is_grads_batched=True)
    return [g.abs().sum(0) for g in per_element]


# ---------------------------------------------------------------------- dsm_loss


@checks.add("dsm_loss", "exact for given noise: 0.5 mean_b sum_d (score(x + sigma noise, sigma) + noise / sigma)^2, "
            "sigma a float or [B]", points=2)
@given(data=st.data(), shape=batch_shapes, dtype=dtypes())
def dsm_given_noise(student, data, shape, dtype):
    x = data.draw(tensors(shape, dtype, low=-5, high=5), label="x")
    noise = data.draw(tensors(shape, dtype, low=-4, high=4), label="noise")
    sigma = data.draw(levels(shape[0], dtype, SIGMA_MIN, 3.0), label="sigma")
    fixture = draw_gaussian_score(data, shape[1:], dtype)
    with citing("dsm_loss", "conventions"):
        r = student.call("dsm_loss", fixture, x, sigma, noise, return_inputs=True)
        with torch.no_grad():
            expected = ref.dsm_loss(built(fixture), x.double(), as64(sigma), noise.double())
        expect_close(r.value, expected.to(dtype), what=f"DSM loss ({name(dtype)}, sigma {type(sigma).__name__})")
        expect_unchanged(r, x, noise, *([sigma] if isinstance(sigma, torch.Tensor) else []))


@checks.add("dsm_loss", "matches the reference's value and parameter gradients with an MLP score on image-shaped data")
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), model_seed=st.integers(0, 2**16))
def dsm_matches_reference(student, data, shape, dtype, model_seed):
    x = data.draw(tensors(shape, dtype, low=-3, high=3), label="x")
    noise = data.draw(tensors(shape, dtype, low=-4, high=4), label="noise")
    sigma = data.draw(levels(shape[0], dtype, SIGMA_MIN, 3.0), label="sigma")
    fixture = mlp_score_for(x, model_seed)
    with citing("dsm_loss", "dsm_grad"):
        r = student.call("dsm_loss", fixture, x, sigma, noise, wrt=(fixture,))
        model = built(fixture)
        expected = ref.dsm_loss(model, x.double(), as64(sigma), noise.double())
        expect_close(r.value, expected.detach().to(dtype), what=f"DSM loss ({name(dtype)}, sigma "
                     f"{type(sigma).__name__})")
        names, params = zip(*model.named_parameters())
        grads = torch.autograd.grad(expected, params)
        sizes = gradient_sizes(dsm_terms(model, x, sigma, noise, magnitude=True), list(params))
        got = r.grad(fixture) or {}
        for key, value, size in zip(names, grads, sizes):
            expect(got.get(key) is not None, f"no gradient reached the score's parameter {key}")
            rounding = (1e-6 if dtype == torch.float32 else 1e-14) * float(size.max())  # ~10 ulps of the summands
            expect_close(got[key], value.to(dtype), what=f"d loss / d {key}", atol=slack(dtype, value) * 10 + rounding)


TRAIN_STEPS, BATCH, SIGMA, HIDDEN = 200, 128, 0.5, [32, 32]
CENTERS = torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
SPREAD = 0.5
THRESHOLD = 0.3  # relative score error: the reference reaches 0.02-0.07 (seeds 1-3, 200-400 steps), untrained ~1.0


def mixture_samples(n: int, gen: torch.Generator) -> torch.Tensor:
    """An equal mixture of N(c_k, 0.5^2 I) in 2-D."""
    k = torch.randint(0, len(CENTERS), (n,), generator=gen)
    return CENTERS[k] + SPREAD * torch.randn(n, 2, generator=gen, dtype=torch.float64)


def mixture_score(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The exact score of the mixture convolved with N(0, sigma^2 I)."""
    var = SPREAD ** 2 + sigma ** 2
    diff = x[:, None, :] - CENTERS  # [n, K, 2]
    weights = torch.softmax(-(diff ** 2).sum(-1) / (2 * var), dim=1)
    return (weights[..., None] * (-diff / var)).sum(1)


@checks.add("dsm_loss", f"trains an MLP score on a 2-D Gaussian mixture to a relative score error below {THRESHOLD:g}",
            points=2, timeout=60, requires=DSM_PINS)
def trains_score_model(student):
    """The judge owns the model and the optimiser (Adam, lr 1e-2, 200 steps of 128 points at
    sigma = 0.5); the worker returns the student's loss and its gradients. The final model is
    scored on 4000 held-out noisy points: E |s_theta - s*|^2 / E |s*|^2. Only float sigma and
    2-D data: its points count with the value pins (requires)."""
    gen = torch.Generator().manual_seed(1)
    model = MLPScore(2, HIDDEN).double()
    params = dict(model.named_parameters())
    optimiser = torch.optim.Adam(params.values(), lr=1e-2)
    spec = {"d": 2, "hidden": HIDDEN}
    for step in range(TRAIN_STEPS):
        x = mixture_samples(BATCH, gen)
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        fixture = Fixture("mlp_score", spec, {k: v.detach() for k, v in params.items()})
        r = student.call("dsm_loss", fixture, x, SIGMA, noise, wrt=(fixture,), seed_offset=step)
        expect_tensor(r.value, shape=(), what=f"DSM loss at step {step}")
        grads = r.grad(fixture) or {}
        optimiser.zero_grad()
        for key, p in params.items():
            g = grads.get(key)
            expect(g is not None, f"no gradient reached parameter {key} at step {step}")
            p.grad = expect_tensor(g, shape=p.shape, what=f"gradient of {key}").to(p.dtype)
        if step == 0:
            expect_training_signal([p.grad for p in params.values()], "gradients of your DSM loss")
        optimiser.step()
    test_gen = torch.Generator().manual_seed(99)
    x = mixture_samples(4000, test_gen)
    x_tilde = x + SIGMA * torch.randn(x.shape, generator=test_gen, dtype=torch.float64)
    with torch.no_grad():
        truth = mixture_score(x_tilde, SIGMA)
        error = float(((model(x_tilde, SIGMA) - truth) ** 2).sum(1).mean() / (truth ** 2).sum(1).mean())
    expect(error < THRESHOLD, f"after {TRAIN_STEPS} Adam steps on your DSM loss, the score model's relative error "
                              f"against the true score of the noisy data is {error:.3f}; a correct loss reaches "
                              f"below {THRESHOLD:g} (an untrained model: about 1)")


# ---------------------------------------------------------------------- sliced_score_matching_loss


@checks.add("sliced_score_matching_loss", "exact for a linear score s(x) = A x + b: mean_b [v^T A v + 0.5 (v . s(x))^2]",
            points=2, requires=("ssm_matches_explicit", "ssm_matches_reference"))
@given(data=st.data(), batch=st.integers(1, 6), dim=st.integers(1, 5), dtype=dtypes())
def ssm_linear_exact(student, data, batch, dim, dtype):
    """An affine score has a constant Jacobian, so a difference quotient in place of grad_x is exact
    here: this pin counts only with the MLP pins (requires)."""
    A = data.draw(tensors((dim, dim), dtype, low=-3, high=3), label="score_fn A")
    b = data.draw(tensors((dim,), dtype, low=-3, high=3), label="score_fn b")
    x = data.draw(tensors((batch, dim), dtype, low=-3, high=3), label="x")
    v = data.draw(tensors((batch, dim), dtype, low=-3, high=3), label="v")
    fixture = Fixture("affine_score", {}, {"A": A, "b": b})
    with citing("ssm", "conventions"):
        r = student.call("sliced_score_matching_loss", fixture, x, v, return_inputs=True)
        expected = ref.sliced_score_matching_loss(built(fixture), x.double(), v.double()).detach()
        vs = (v.double() * (x.double() @ A.double().T + b.double())).sum(1)  # the projections, for the slack
        expect_close(r.value, expected.to(dtype), what=f"sliced score matching loss ({name(dtype)})",
                     atol=slack(dtype, vs ** 2))
        expect_unchanged(r, x, v)


@checks.add("sliced_score_matching_loss", "matches the reference's value and parameter gradients with an MLP score")
@given(data=st.data(), batch=st.integers(1, 6), dim=st.integers(1, 5), dtype=dtypes(), model_seed=st.integers(0, 2**16))
def ssm_matches_reference(student, data, batch, dim, dtype, model_seed):
    fixture = mlp_score(dim, [8], dtype, torch.Generator().manual_seed(model_seed))
    x = data.draw(tensors((batch, dim), dtype, low=-3, high=3), label="x")
    v = data.draw(tensors((batch, dim), dtype, low=-3, high=3), label="v")
    with citing("ssm", "ssm_grad"):
        r = student.call("sliced_score_matching_loss", fixture, x, v, wrt=(fixture,))
        model = built(fixture)
        expected = ref.sliced_score_matching_loss(model, x.double(), v.double())
        grads = dict(zip([k for k, _ in model.named_parameters()],
                         torch.autograd.grad(expected, list(model.parameters()))))
        expect_close(r.value, expected.detach().to(dtype), what=f"sliced score matching loss ({name(dtype)})",
                     atol=slack(dtype, expected) * 10)
        got = r.grad(fixture) or {}
        for key, value in grads.items():
            expect(got.get(key) is not None, f"no gradient reached the score's parameter {key}")
            expect_close(got[key], value.to(dtype), what=f"d loss / d {key}", atol=slack(dtype, value) * 100)


# ---------------------------------------------------------------------- langevin_step


@checks.add("langevin_step", "exact for given noise: x + step * score(x, sigma) + sqrt(2 step) noise", points=2)
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), step_size=st.floats(1e-3, 1.0),
       sigma_passed=st.sampled_from(["omitted", "None", "float", "tensor [B]"]))
def langevin_given_noise(student, data, shape, dtype, step_size, sigma_passed):
    x = data.draw(tensors(shape, dtype, low=-5, high=5), label="x")
    noise = data.draw(tensors(shape, dtype, low=-4, high=4), label="noise")
    sigma = None
    if sigma_passed == "float":
        sigma = data.draw(st.floats(SIGMA_MIN, 3.0), label="sigma")
    elif sigma_passed == "tensor [B]":
        sigma = data.draw(tensors((shape[0],), dtype, low=SIGMA_MIN, high=3.0), label="sigma")
    fixture = draw_gaussian_score(data, shape[1:], dtype)
    args = (fixture, x, step_size, noise) + (() if sigma_passed == "omitted" else (sigma,))
    with citing("langevin", "conventions"):
        r = student.call("langevin_step", *args, return_inputs=True)
        model = built(fixture)
        with torch.no_grad():
            expected = ref.langevin_step(model, x.double(), step_size, noise.double(), as64(sigma))
            drift = step_size * model(x.double(), as64(sigma))
        kick = math.sqrt(2 * step_size) * noise.double()
        expect_close(r.value, expected.to(dtype), what=f"x_next ({name(dtype)}, sigma {sigma_passed})",
                     atol=slack(dtype, x, drift, kick))
        expect_unchanged(r, x, noise, *([sigma] if isinstance(sigma, torch.Tensor) else []))


@checks.add("langevin_step", "matches the reference with an MLP score")
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), model_seed=st.integers(0, 2**16),
       step_size=st.floats(1e-3, 1.0))
def langevin_matches_reference(student, data, shape, dtype, model_seed, step_size):
    x = data.draw(tensors(shape, dtype, low=-3, high=3), label="x")
    noise = data.draw(tensors(shape, dtype, low=-4, high=4), label="noise")
    sigma = data.draw(levels(shape[0], dtype, SIGMA_MIN, 3.0, allow_none=True), label="sigma")
    fixture = mlp_score_for(x, model_seed)
    with torch.no_grad():
        expected = ref.langevin_step(built(fixture), x.double(), step_size, noise.double(), as64(sigma))
    with citing("langevin"):
        expect_close(student.langevin_step(fixture, x, step_size, noise, sigma), expected.to(dtype), what="x_next",
                     atol=slack(dtype, expected))


# ---------------------------------------------------------------------- vp_sde_marginal


@checks.add("vp_sde_marginal", "matches the reference: float32 and float64 x0, t in x0's dtype or float64, t near "
            "1e-3, given or default betas")
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), t_dtype=st.sampled_from(["like x0", "float64"]),
       betas=vp_betas, t_range=st.sampled_from([(T_MIN, 1.0), (T_MIN, 2 * T_MIN)]))
def vp_marginal_matches_reference(student, data, shape, dtype, t_dtype, betas, t_range):
    x0 = data.draw(tensors(shape, dtype, low=-5, high=5), label="x0")
    t = data.draw(tensors((shape[0],), dtype if t_dtype == "like x0" else torch.float64, low=t_range[0],
                          high=t_range[1]), label="t")
    label = f"({name(dtype)} x0, {name(t.dtype)} t)"
    with citing("vp_marginal", "conventions"):
        r = student.call("vp_sde_marginal", x0, t, **betas.kwargs, return_inputs=True)
        mean, std = expect_tuple(r.value, 2, what="vp_sde_marginal(x0, t)")
        e_mean, e_std = ref.vp_sde_marginal(x0.double(), t.double(), **betas.kwargs)
        expect_close(mean, e_mean.to(dtype), what=f"mean {label}", atol=slack(dtype, x0) * 10)
        expect_close(std, e_std.expand(shape).to(dtype), what=f"std {label}", broadcast=True,
                     atol=1e-6 if dtype == torch.float32 else None)
        expect_unchanged(r, x0, t)


# ---------------------------------------------------------------------- reverse_sde_step / probability_flow_drift


def vp_gaussian_score(data, event, dtype) -> Fixture:
    """The exact VP score of Gaussian data, with its own drawn betas (what the score uses is not the step's business)."""
    score_beta_min = data.draw(st.floats(0.05, 1.0), label="score_fn beta_min")
    score_beta_max = data.draw(st.floats(5.0, 25.0), label="score_fn beta_max")
    return draw_gaussian_score(data, event, dtype, "vp", beta_min=score_beta_min, beta_max=score_beta_max)


@checks.add("reverse_sde_step", "exact for given noise: x - (f - g^2 score(x, t)) dt + g sqrt(dt) noise, "
            "f = -0.5 beta(t) x, g^2 = beta(t)", points=2)
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), betas=vp_betas, dt=st.floats(1e-4, 0.2))
def reverse_sde_given_noise(student, data, shape, dtype, betas, dt):
    x = data.draw(tensors(shape, dtype, low=-5, high=5), label="x")
    t = data.draw(tensors((shape[0],), dtype, low=T_MIN, high=1.0), label="t")
    noise = data.draw(tensors(shape, dtype, low=-4, high=4), label="noise")
    fixture = vp_gaussian_score(data, shape[1:], dtype)
    with citing("reverse", "conventions"):
        r = student.call("reverse_sde_step", fixture, x, t, dt, noise, **betas.kwargs, return_inputs=True)
        model = built(fixture)
        with torch.no_grad():
            expected = ref.reverse_sde_step(model, x.double(), t.double(), dt, noise.double(), **betas.kwargs)
            beta = per_example(betas.values[0] + t.double() * (betas.values[1] - betas.values[0]), x)
            terms = (x, 0.5 * beta * x.double() * dt, beta * model(x.double(), t.double()) * dt,
                     (beta * dt).sqrt() * noise.double())
        expect_close(r.value, expected.to(dtype), what=f"x at t - dt ({name(dtype)}, {betas!r})",
                     atol=slack(dtype, *terms))
        expect_unchanged(r, x, t, noise)


@checks.add("reverse_sde_step", "matches the reference with an MLP score")
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), model_seed=st.integers(0, 2**16), betas=vp_betas,
       dt=st.floats(1e-4, 0.2))
def reverse_sde_matches_reference(student, data, shape, dtype, model_seed, betas, dt):
    x = data.draw(tensors(shape, dtype, low=-3, high=3), label="x")
    t = data.draw(tensors((shape[0],), dtype, low=T_MIN, high=1.0), label="t")
    noise = data.draw(tensors(shape, dtype, low=-4, high=4), label="noise")
    fixture = mlp_score_for(x, model_seed)
    with torch.no_grad():
        expected = ref.reverse_sde_step(built(fixture), x.double(), t.double(), dt, noise.double(), **betas.kwargs)
    with citing("reverse"):
        expect_close(student.reverse_sde_step(fixture, x, t, dt, noise, **betas.kwargs), expected.to(dtype),
                     what="x at t - dt", atol=slack(dtype, expected, x) * 10)


@checks.add("probability_flow_drift", "exact: f(x, t) - 0.5 g(t)^2 score(x, t) = -0.5 beta(t) (x + score(x, t))",
            points=2)
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), betas=vp_betas)
def pf_drift_exact(student, data, shape, dtype, betas):
    x = data.draw(tensors(shape, dtype, low=-5, high=5), label="x")
    t = data.draw(tensors((shape[0],), dtype, low=T_MIN, high=1.0), label="t")
    fixture = vp_gaussian_score(data, shape[1:], dtype)
    with citing("pf", "conventions"):
        r = student.call("probability_flow_drift", fixture, x, t, **betas.kwargs, return_inputs=True)
        model = built(fixture)
        with torch.no_grad():
            expected = ref.probability_flow_drift(model, x.double(), t.double(), **betas.kwargs)
            beta = per_example(betas.values[0] + t.double() * (betas.values[1] - betas.values[0]), x)
            terms = (0.5 * beta * x.double(), 0.5 * beta * model(x.double(), t.double()))
        expect_close(r.value, expected.to(dtype), what=f"drift ({name(dtype)}, {betas!r})", atol=slack(dtype, *terms))
        expect_unchanged(r, x, t)


@checks.add("probability_flow_drift", "matches the reference with an MLP score")
@given(data=st.data(), shape=batch_shapes, dtype=dtypes(), model_seed=st.integers(0, 2**16), betas=vp_betas)
def pf_drift_matches_reference(student, data, shape, dtype, model_seed, betas):
    x = data.draw(tensors(shape, dtype, low=-3, high=3), label="x")
    t = data.draw(tensors((shape[0],), dtype, low=T_MIN, high=1.0), label="t")
    fixture = mlp_score_for(x, model_seed)
    with torch.no_grad():
        expected = ref.probability_flow_drift(built(fixture), x.double(), t.double(), **betas.kwargs)
    with citing("pf"):
        expect_close(student.probability_flow_drift(fixture, x, t, **betas.kwargs), expected.to(dtype),
                     what="drift", atol=slack(dtype, expected, x) * 10)


# ---------------------------------------------------------------------- contrastive_divergence_loss


@checks.add("contrastive_divergence_loss", "matches the reference's value and gradients with an MLP energy, "
            "batches of different sizes")
@given(data=st.data(), shape=batch_shapes, batch_neg=st.integers(1, 6), dtype=dtypes(),
       model_seed=st.integers(0, 2**16))
def cd_matches_reference(student, data, shape, batch_neg, dtype, model_seed):
    fixture = mlp_energy(int(torch.Size(shape[1:]).numel()), [8], dtype, torch.Generator().manual_seed(model_seed))
    x_pos = data.draw(tensors(shape, dtype, low=-3, high=3), label="x_pos")
    x_neg = data.draw(tensors((batch_neg, *shape[1:]), dtype, low=-3, high=3), label="x_neg")
    with citing("cd", "cd_grad"):
        r = student.call("contrastive_divergence_loss", fixture, x_pos, x_neg, wrt=(fixture,), return_inputs=True)
        model = built(fixture)
        expected = ref.contrastive_divergence_loss(model, x_pos.double(), x_neg.double())
        grads = dict(zip([k for k, _ in model.named_parameters()],
                         torch.autograd.grad(expected, list(model.parameters()))))
        expect_close(r.value, expected.detach().to(dtype), what=f"CD loss ({name(dtype)})",
                     atol=slack(dtype, expected) * 10)
        got = r.grad(fixture) or {}
        for key, value in grads.items():
            expect(got.get(key) is not None, f"no gradient reached the energy's parameter {key}")
            expect_close(got[key], value.to(dtype), what=f"d loss / d {key}", atol=slack(dtype, value) * 10)
        expect_unchanged(r, x_pos, x_neg)
