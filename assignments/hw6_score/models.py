"""Judge-side helpers for the hw6 checks: fixtures, closed-form moments, exact chain laws.

No implementation of a graded function here (students read this file): only the
definitions the handout states (the VP-SDE's beta(t), f and g, the Gaussian
scores), the VP kernel by quadrature of the SDE's moment equations, exact moment
calculus for Gaussian data, central differences of the student's own values,
and the handout sentences that failure messages quote.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from hypothesis import strategies as st

from grader.checks import Fixture
from grader.compare import CheckFailed, expect, expect_tensor
from grader.verify import expect_derivative
from grader.worker.fixtures import build
from grader.worker.fixtures.score import MLPEnergy, MLPScore

Z_FAIL = 6.0  # two-sided |N(0,1)| > 6 has probability 2e-9: the false-fail bound of one z-test
CHI2_ALPHA = 1e-9  # each tail of a chi-square variance test


# ---------------------------------------------------------------------- the handout, quoted

HANDOUT = {  # what failure messages quote: the sentence of the handout (score.py) a property follows from
    "conventions": "module docstring: \"Keep the dtype and device of the data, never modify inputs in place, and "
                   "keep every loss differentiable.\"",
    "dsm_loss": "dsm_loss: \"x_tilde = x + sigma * noise; loss = 0.5 * mean_b sum_d ( score_fn(x_tilde, sigma) + "
                "noise / sigma )^2\"; \"sigma: a float, or a tensor [B] (one level per example)\"; \"sum_d\" sums "
                "all non-batch dims",
    "dsm_grad": "dsm_loss, Returns: \"scalar, differentiable in the parameters of score_fn\"",
    "ssm": "sliced_score_matching_loss: \"With s = score_fn(x, None): loss = mean_b [ v_b . grad_x (v_b . s_b) + "
           "0.5 (v_b . s_b)^2 ]\"",
    "ssm_grad": "sliced_score_matching_loss: \"torch.autograd.grad of sum_b (v_b . s_b) with respect to x with "
                "create_graph=True, so that the loss stays differentiable in the parameters of score_fn\"",
    "langevin": "langevin_step: \"x + step_size * score_fn(x, sigma) + sqrt(2 * step_size) * noise\"; \"sigma: "
                "passed through to score_fn unchanged (may be None)\"",
    "vp_marginal": "vp_sde_marginal: \"Perturbation kernel p_t(x_t | x_0) of the VP-SDE\" (module docstring: "
                   "\"dx = f(x, t) dt + g(t) dw with f(x, t) = -0.5 beta(t) x and g(t)^2 = beta(t)\", beta(t) = "
                   "beta_min + t (beta_max - beta_min)); Returns: \"(mean, std) with mean: [B, ...] and std: "
                   "[B, 1, ..., 1] (broadcastable to x0), in x0's dtype\"",
    "reverse": "reverse_sde_step: \"x_prev = x - (f - g^2 * score_fn(x, t)) * dt + sqrt(g^2 * dt) * noise\" with "
               "\"beta = beta_min + t * (beta_max - beta_min), f = -0.5 * beta * x, g^2 = beta\"; \"Drift and score "
               "are evaluated at t\"",
    "pf": "probability_flow_drift: \"drift = f(x, t) - 0.5 * g(t)^2 * score_fn(x, t) = -0.5 * beta * x - 0.5 * "
          "beta * score_fn(x, t)\"",
    "cd": "contrastive_divergence_loss: \"mean_b E(x_pos) - mean_b E(x_neg.detach())\"; x_neg is \"[B', ...]\"",
    "cd_grad": "contrastive_divergence_loss: \"Gradients reach the energy's parameters through both terms and never "
               "flow into x_neg\"",
}


@contextmanager
def citing(*keys: str) -> Iterator[None]:
    """A failed property's message ends with the handout sentences (``HANDOUT`` keys) it follows from."""
    try:
        yield
    except CheckFailed as exc:
        said = "\n  ".join(HANDOUT[k] for k in keys)
        raise CheckFailed(f"{exc}\n  The handout says, {said}") from None


# ---------------------------------------------------------------------- VP-SDE betas, as a call passes them

DEFAULT_BETAS = (0.1, 20.0)  # the handout's defaults of beta_min, beta_max


@dataclass(frozen=True)
class VPBetas:
    """beta_min and beta_max as a check passes them; None: not passed (the defaults 0.1 and 20 apply)."""

    beta_min: float | None = None
    beta_max: float | None = None

    @property
    def kwargs(self) -> dict:
        return {} if self.beta_min is None else {"beta_min": self.beta_min, "beta_max": self.beta_max}

    @property
    def values(self) -> tuple[float, float]:
        return DEFAULT_BETAS if self.beta_min is None else (self.beta_min, self.beta_max)

    def __repr__(self) -> str:
        if self.beta_min is None:
            return "VPBetas(not passed: the defaults beta_min=0.1, beta_max=20.0)"
        return f"VPBetas(beta_min={self.beta_min!r}, beta_max={self.beta_max!r})"


vp_betas = st.one_of(st.just(VPBetas()), st.builds(VPBetas, st.floats(0.05, 1.0), st.floats(5.0, 25.0)))


# ---------------------------------------------------------------------- fixtures


def gaussian_score(mean: torch.Tensor, var: torch.Tensor, kind: str = "ve", *, beta_min: float = 0.1,
                   beta_max: float = 20.0, dtype: torch.dtype | None = None) -> Fixture:
    """The exact score of N(mean, diag var) data perturbed by VE noise (sigma) or the VP kernel (t)."""
    dtype = dtype or mean.dtype
    return Fixture("gaussian_score", {"kind": kind, "beta_min": beta_min, "beta_max": beta_max},
                   {"mean": mean.to(dtype), "var": var.to(dtype)})


def built(fixture: Fixture, dtype: torch.dtype = torch.float64):
    """The same fixture built in the judge (float64 by default), to compute expected values."""
    return build(fixture.name, fixture.params, {k: v.to(dtype) for k, v in fixture.weights.items()})


def random_weights(module: torch.nn.Module, generator: torch.Generator, dtype: torch.dtype,
                   scale: float = 0.7) -> dict[str, torch.Tensor]:
    return {k: (scale * torch.randn(v.shape, generator=generator, dtype=torch.float64)).to(dtype)
            for k, v in module.state_dict().items()}


def mlp_score(d: int, hidden: list[int], dtype: torch.dtype, generator: torch.Generator) -> Fixture:
    return Fixture("mlp_score", {"d": d, "hidden": hidden}, random_weights(MLPScore(d, hidden), generator, dtype))


def mlp_energy(d: int, hidden: list[int], dtype: torch.dtype, generator: torch.Generator) -> Fixture:
    return Fixture("mlp_energy", {"d": d, "hidden": hidden}, random_weights(MLPEnergy(d, hidden), generator, dtype))


def per_example(c, like: torch.Tensor) -> torch.Tensor:
    """float or [B] -> a float64 tensor broadcasting over ``like`` ([B, 1, ..., 1] or a scalar)."""
    c = torch.as_tensor(c, dtype=torch.float64)
    return c.reshape((-1,) + (1,) * (like.dim() - 1)) if c.dim() else c


def beta_of(t: torch.Tensor, beta_min: float, beta_max: float) -> torch.Tensor:
    return beta_min + t * (beta_max - beta_min)


def vp_kernel_by_quadrature(t: torch.Tensor, beta_min: float, beta_max: float,
                            intervals: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The VP-SDE kernel's mean coefficient and std at times t, float64, from the SDE alone.

    For dx = -0.5 beta(t) x dt + sqrt(beta(t)) dw from x(0) = x0 (the handout's f and g), the
    mean m and variance v solve dm/dt = -0.5 beta m, m(0) = x0 and dv/dt = beta (1 - v), v(0) = 0,
    so m = x0 exp(-B / 2) and 1 - v = exp(-B) with B(t) = int_0^t beta(s) ds, computed here by
    composite Simpson quadrature on the handout's beta(s).
    """
    t = t.double()
    grid = torch.linspace(0, 1, 2 * intervals + 1, dtype=torch.float64)
    weights = torch.ones_like(grid)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    s = t[..., None] * grid  # [..., nodes]: the nodes of [0, t]
    integral = (beta_of(s, beta_min, beta_max) * weights).sum(-1) * t / (6 * intervals)
    return torch.exp(-0.5 * integral), torch.sqrt(-torch.expm1(-integral))


# ---------------------------------------------------------------------- tolerances


def slack(dtype: torch.dtype, *terms: torch.Tensor) -> float:
    """Absolute slack for a value summed from ``terms``: rounding of the largest term (float32 ~1e-5 of it)."""
    scale = 1.0 + max(float(t.detach().double().abs().max()) if t.numel() else 0.0 for t in terms)
    return (1e-5 if dtype == torch.float32 else 1e-10) * scale


# ---------------------------------------------------------------------- DSM moments


def dsm_residual_coeffs(data_mean, data_var, fix_mean, fix_var, sigma) -> tuple[torch.Tensor, ...]:
    """For x ~ N(data_mean, data_var), x_tilde = x + sigma eps and a VE Gaussian score fixture
    (fix_mean, fix_var): the residual score(x_tilde, sigma) + eps / sigma = mu + alpha z + beta eps
    with z, eps independent N(0, 1). Returns (mu, alpha, beta), broadcast over [B, D]."""
    w = fix_var + sigma ** 2
    mu = -(data_mean - fix_mean) / w
    alpha = -data_var.sqrt() / w
    beta = 1.0 / sigma - sigma / w
    return torch.broadcast_tensors(mu, alpha, beta)


def dsm_loss_moments(mu, alpha, beta) -> tuple[float, float]:
    """(E, Var) of the batch mean of 0.5 sum_d r^2 with r = mu + alpha z + beta eps per [B, D] entry."""
    c = alpha ** 2 + beta ** 2
    per_sample_mean = 0.5 * (mu ** 2 + c).sum(1)
    per_sample_var = 0.25 * (2 * c ** 2 + 4 * mu ** 2 * c).sum(1)
    n = mu.shape[0]
    return float(per_sample_mean.mean()), float(per_sample_var.sum() / n ** 2)


def dsm_difference_moments(first, second) -> tuple[float, float]:
    """(E, Var) of loss(second) - loss(first) on the same samples, each given by (mu, alpha, beta)."""
    mu, a1, b1 = first
    nu, a2, b2 = second
    n1, n2 = a1 ** 2 + b1 ** 2, a2 ** 2 + b2 ** 2
    dot = a1 * a2 + b1 * b2
    mean = nu ** 2 - mu ** 2 + n2 - n1
    cross = (nu * a2 - mu * a1) ** 2 + (nu * b2 - mu * b1) ** 2
    var = 4 * cross + 2 * (n2 ** 2 + n1 ** 2 - 2 * dot ** 2)
    n = mu.shape[0]
    return float(0.5 * mean.sum(1).mean()), float(0.25 * var.sum() / n ** 2)


# ---------------------------------------------------------------------- tests on samples


def chi2_bounds(n: int, alpha: float = CHI2_ALPHA) -> tuple[float, float]:
    """Quantiles (alpha, 1 - alpha) of chi-square(n) / n: bounds on a variance ratio with known mean."""
    from scipy import stats  # here, not at the top: importing it takes a second
    return stats.chi2.ppf(alpha, n) / n, stats.chi2.isf(alpha, n) / n


def gaussian_sample_problems(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> list[str]:
    """Per column of x [n, D]: a z-test of the mean (6 sd) and a chi-square test of the variance
    around the known mean (two-sided, 1e-9 per tail). Returns what failed, in words."""
    n = x.shape[0]
    lo, hi = chi2_bounds(n)
    problems = []
    for d in range(x.shape[1]):
        col, m, v = x[:, d].double(), float(mean[d]), float(var[d])
        got_mean = float(col.mean())
        ratio = float(((col - m) ** 2).mean()) / v
        if abs(got_mean - m) > Z_FAIL * math.sqrt(v / n):
            problems.append(f"dim {d}: sample mean {got_mean:.4f}, expected {m:.4f} (± {math.sqrt(v / n):.2g})")
        if not lo <= ratio <= hi:
            problems.append(f"dim {d}: sample variance {float(col.var()):.4f}, expected {v:.4f} "
                            f"(ratio {ratio:.4f} outside [{lo:.3f}, {hi:.3f}])")
    return problems


# ---------------------------------------------------------------------- exact chain laws


def langevin_chain_law(x0: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, step: float,
                       n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact law after n_steps of x' = x - step (x - m) / s^2 + sqrt(2 step) xi from a fixed x0.

    With a = 1 - step / s^2 the chain is AR(1): mean m + a^n (x0 - m), variance
    V (1 - a^(2n)) with V = 2 step / (1 - a^2) = s^2 / (1 - step / (2 s^2)).
    """
    a = 1 - step / var
    stationary = var / (1 - step / (2 * var))
    return mean + a ** n_steps * (x0 - mean), stationary * (1 - a ** (2 * n_steps))


def vp_sampler_law(mean: torch.Tensor, var: torch.Tensor, n_steps: int, t_end: float, method: str,
                   init_mean: torch.Tensor, init_var: torch.Tensor,
                   beta_min: float = 0.1, beta_max: float = 20.0) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Mean and variance after the discretised sampler (the fixture vp_sampler), propagated exactly.

    With data N(m, s^2) the VP score at t is -(x - a m) / v_t, v_t = a^2 s^2 + 1 - a^2, so one
    Euler-Maruyama step of the reverse SDE is
        x' = x + 0.5 beta x dt + beta dt score + sqrt(beta dt) xi = c x + d + sqrt(beta dt) xi,
        c = 1 + 0.5 beta dt - beta dt / v_t,  d = beta dt a m / v_t,
    and one Euler step of the probability-flow ODE is x' = x + 0.5 beta x dt + 0.5 beta dt score
    (c = 1 + 0.5 beta dt - 0.5 beta dt / v_t, d = 0.5 beta dt a m / v_t, no noise).
    Also returns the affine maps (c, d) of every step (the ODE sampler is x -> prod c x + ...).
    """
    dt = (1.0 - t_end) / n_steps
    mu, v = init_mean.double(), init_var.double()
    steps = []
    for k in range(n_steps):
        t = torch.tensor(1.0 - k * dt, dtype=torch.float64)
        beta = beta_of(t, beta_min, beta_max)
        a, std = vp_kernel_by_quadrature(t, beta_min, beta_max)
        v_t = a ** 2 * var + std ** 2
        share = 1.0 if method == "sde" else 0.5
        c = 1 + 0.5 * beta * dt - share * beta * dt / v_t
        d = share * beta * dt * a * mean / v_t
        mu = c * mu + d
        v = c ** 2 * v + (beta * dt if method == "sde" else 0.0)
        steps.append((c, d))
    return mu, v, steps


# ---------------------------------------------------------------------- gradients by central differences


def gradient_matches_differences(student, function: str, fixture: Fixture, args: tuple, *, what: str,
                                 hint: str = ""):
    """The student's gradient of ``function(fixture, *args)`` wrt the parameters of ``fixture`` is the
    derivative of the student's own values (``grader/verify.py: expect_derivative``): every parameter
    gets a gradient, and along a random direction drawn after the gradient is reported (from a keyed
    seed the worker cannot know), the gradient's inner product with it matches Richardson-extrapolated
    central differences of the student's values at nearby parameters, with a tolerance for rounding
    and truncation that holds for any smooth loss. float64 throughout. Consistency only: a check
    using this names its value pins in ``requires`` (zeros pass it). Returns the gradient call's
    CallResult (it holds the inputs after the call). ``hint`` ends a mismatch's message (the usual
    way to keep the value but lose part of the gradient)."""
    r = student.call(function, fixture, *args, wrt=(fixture,), return_inputs=True)
    expect_tensor(r.value, shape=(), dtype=torch.float64, what=what)
    grads = r.grad(fixture)
    grads = grads if isinstance(grads, dict) else {}
    for key, w in fixture.weights.items():
        expect(grads.get(key) is not None, f"no gradient reached the parameter {key} of {fixture.name}: keep {what} "
                                           "differentiable (no .detach(), .item(), torch.no_grad() or numpy on the "
                                           "way)")
        expect_tensor(grads[key], shape=w.shape, what=f"d {what} / d {key}")
    try:
        expect_derivative(student, function, (fixture, *args), r, fixture,
                          what=f"the gradient of the {what} with respect to {fixture.name}'s parameters "
                               f"({', '.join(fixture.weights)})")
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}{hint}") from None
    return r
