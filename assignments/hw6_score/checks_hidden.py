"""hw6_score hidden checks: comparisons with reference/score.py, and a training run.

Graded only (visibility after_published); never shipped to students. The
reference is evaluated in float64 on the same fixtures built here.
"""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks, Fixture
from grader.compare import expect, expect_close, expect_tensor, expect_tuple
from grader.strategies import dtypes, tensors
from grader.worker.fixtures.score import MLPScore
from reference import score as ref

from .checks_public import SIGMA_MIN, T_MIN, batch_shapes, beta_kwargs, betas, levels, name
from .models import built, mlp_energy, mlp_score, slack

checks = Checks(hidden=True)


def as64(c):
    return c.double() if isinstance(c, torch.Tensor) else c


@st.composite
def mlp_inputs(draw, low=-3.0, high=3.0):
    """(x, dtype, model_seed): a batch [B, *event] with 1-3 event dims (see score_model)."""
    shape, dtype = draw(batch_shapes), draw(dtypes())
    return draw(tensors(shape, dtype, low=low, high=high)), dtype, draw(st.integers(0, 2**16))


def score_model(inputs) -> tuple[Fixture, torch.Tensor, torch.dtype]:
    """A random tanh MLP score (weights from model_seed) for the drawn batch."""
    x, dtype, seed = inputs
    return mlp_score(x[0].numel(), [8], dtype, torch.Generator().manual_seed(seed)), x, dtype


@checks.add("dsm_loss", "matches the reference with an MLP score on image-shaped data")
@given(data=st.data(), inputs=mlp_inputs())
def dsm_matches_reference(student, data, inputs):
    fixture, x, dtype = score_model(inputs)
    noise = data.draw(tensors(x.shape, dtype, low=-4, high=4))
    sigma = data.draw(levels(x.shape[0], dtype, SIGMA_MIN, 3.0))
    with torch.no_grad():
        expected = ref.dsm_loss(built(fixture), x.double(), as64(sigma), noise.double())
    expect_close(student.dsm_loss(fixture, x, sigma, noise), expected.to(dtype),
                 what=f"DSM loss ({name(dtype)}, sigma {type(sigma).__name__})")


@checks.add("sliced_score_matching_loss", "matches the reference's value and parameter gradients with an MLP score")
@given(data=st.data(), b=st.integers(1, 6), d=st.integers(1, 5), dtype=dtypes(), seed=st.integers(0, 2**16))
def ssm_matches_reference(student, data, b, d, dtype, seed):
    fixture = mlp_score(d, [8], dtype, torch.Generator().manual_seed(seed))
    x = data.draw(tensors((b, d), dtype, low=-3, high=3))
    v = data.draw(tensors((b, d), dtype, low=-3, high=3))
    r = student.call("sliced_score_matching_loss", fixture, x, v, wrt=(fixture,))
    model = built(fixture)
    expected = ref.sliced_score_matching_loss(model, x.double(), v.double())
    grads = dict(zip([k for k, _ in model.named_parameters()], torch.autograd.grad(expected, list(model.parameters()))))
    expect_close(r.value, expected.detach().to(dtype), what=f"sliced score matching loss ({name(dtype)})",
                 atol=slack(dtype, expected) * 10)
    got = r.grad(fixture) or {}
    for key, value in grads.items():
        expect(got.get(key) is not None, f"no gradient reached the score's parameter {key}")
        expect_close(got[key], value.to(dtype), what=f"d loss / d {key}", atol=slack(dtype, value) * 100)


@checks.add("langevin_step", "matches the reference with an MLP score")
@given(data=st.data(), inputs=mlp_inputs(), step=st.floats(1e-3, 1.0))
def langevin_matches_reference(student, data, inputs, step):
    fixture, x, dtype = score_model(inputs)
    noise = data.draw(tensors(x.shape, dtype, low=-4, high=4))
    sigma = data.draw(levels(x.shape[0], dtype, SIGMA_MIN, 3.0, allow_none=True))
    with torch.no_grad():
        expected = ref.langevin_step(built(fixture), x.double(), step, noise.double(), as64(sigma))
    expect_close(student.langevin_step(fixture, x, step, noise, sigma), expected.to(dtype), what="x_next",
                 atol=slack(dtype, expected))


@checks.add("vp_sde_marginal", "matches the reference, float32 near t = 1e-3 and float32 data with float64 t")
@given(data=st.data(), shape=batch_shapes, b=betas(), small_t=st.booleans())
def vp_marginal_matches_reference(student, data, shape, b, small_t):
    x0 = data.draw(tensors(shape, torch.float32, low=-5, high=5))
    t = data.draw(tensors((shape[0],), torch.float64, low=T_MIN, high=2 * T_MIN if small_t else 1.0))
    mean, std = expect_tuple(student.vp_sde_marginal(x0, t, **beta_kwargs(b)), 2)
    e_mean, e_std = ref.vp_sde_marginal(x0.double(), t, **beta_kwargs(b))
    expect_close(mean, e_mean.float(), what="mean (float32 x0, float64 t)", atol=1e-6)
    expect_close(std, e_std.expand(shape).float(), what="std (float32 x0, float64 t)", broadcast=True, atol=1e-6)


@checks.add("reverse_sde_step", "matches the reference with an MLP score")
@given(data=st.data(), inputs=mlp_inputs(), b=betas(), dt=st.floats(1e-4, 0.2))
def reverse_sde_matches_reference(student, data, inputs, b, dt):
    fixture, x, dtype = score_model(inputs)
    t = data.draw(tensors((x.shape[0],), dtype, low=T_MIN, high=1.0))
    noise = data.draw(tensors(x.shape, dtype, low=-4, high=4))
    with torch.no_grad():
        expected = ref.reverse_sde_step(built(fixture), x.double(), t.double(), dt, noise.double(), **beta_kwargs(b))
    expect_close(student.reverse_sde_step(fixture, x, t, dt, noise, **beta_kwargs(b)), expected.to(dtype),
                 what="x at t - dt", atol=slack(dtype, expected, x) * 10)


@checks.add("probability_flow_drift", "matches the reference with an MLP score")
@given(data=st.data(), inputs=mlp_inputs(), b=betas())
def pf_drift_matches_reference(student, data, inputs, b):
    fixture, x, dtype = score_model(inputs)
    t = data.draw(tensors((x.shape[0],), dtype, low=T_MIN, high=1.0))
    with torch.no_grad():
        expected = ref.probability_flow_drift(built(fixture), x.double(), t.double(), **beta_kwargs(b))
    expect_close(student.probability_flow_drift(fixture, x, t, **beta_kwargs(b)), expected.to(dtype),
                 what="drift", atol=slack(dtype, expected, x) * 10)


@checks.add("contrastive_divergence_loss", "matches the reference's value and gradients with an MLP energy")
@given(data=st.data(), shape=batch_shapes, b_neg=st.integers(1, 6), dtype=dtypes(), seed=st.integers(0, 2**16))
def cd_matches_reference(student, data, shape, b_neg, dtype, seed):
    fixture = mlp_energy(int(torch.Size(shape[1:]).numel()), [8], dtype, torch.Generator().manual_seed(seed))
    x_pos = data.draw(tensors(shape, dtype, low=-3, high=3))
    x_neg = data.draw(tensors((b_neg, *shape[1:]), dtype, low=-3, high=3))
    r = student.call("contrastive_divergence_loss", fixture, x_pos, x_neg, wrt=(fixture,))
    model = built(fixture)
    expected = ref.contrastive_divergence_loss(model, x_pos.double(), x_neg.double())
    grads = dict(zip([k for k, _ in model.named_parameters()], torch.autograd.grad(expected, list(model.parameters()))))
    expect_close(r.value, expected.detach().to(dtype), what="CD loss", atol=slack(dtype, expected) * 10)
    got = r.grad(fixture) or {}
    for key, value in grads.items():
        expect(got.get(key) is not None, f"no gradient reached the energy's parameter {key}")
        expect_close(got[key], value.to(dtype), what=f"d loss / d {key}", atol=slack(dtype, value) * 10)


# ---------------------------------------------------------------------- training

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
            points=2, timeout=60)
def trains_score_model(student):
    """The judge owns the model and the optimiser (Adam, lr 1e-2, 200 steps of 128 points at
    sigma = 0.5); the worker returns the student's loss and its gradients. The final model is
    scored on 4000 held-out noisy points: E |s_theta - s*|^2 / E |s*|^2."""
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
