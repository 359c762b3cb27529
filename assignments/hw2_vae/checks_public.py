"""hw2_vae public checks: properties that need no reference implementation.

Students run these with `dgm-grade check vae.py`. Expected values come from
Monte-Carlo estimates, integrals of a 1-D latent model (numbers in models.py),
invariances, and relations between the function's own outputs; no check here
implements a graded function (the exact values are hidden checks).

A check that tests consistency or a special case counts only when the
function's value-pinning checks pass (``requires=``). Statistical checks
state their false-fail probability; each uses a fixed seed, so the same code
always gets the same score.
"""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import expect, expect_close, expect_tensor, expect_tuple, expect_unchanged
from grader.strategies import dtypes, gaussians, shapes, tensors
from grader.verify import expect_derivative

from .models import (DEC_B, DEC_W, ENC_LOG_VAR, ENC_MEAN, X_ONE, Z_FAIL, binary_vectors, handout, linear_vae,
                     vae_fixture)

checks = Checks()

# Handout sentences the checks follow from (each failure message ends with the ones it tests).
STABLE = ("Conventions: stay numerically stable (finite values and gradients for logits up to |100|, means up to "
          "|1e3|, log-variances in [-30, 30]).")
DTYPE = "Conventions: Keep the dtype and device of the inputs, never modify inputs in place."
DIFFERENTIABLE = "Conventions: keep everything differentiable."
LAST_DIM = ('Conventions: "Summed over the last dim" means the last dimension is the event dimension and all '
            "leading dimensions broadcast.")
KL = ("kl_normal: Computes KL(N(q_mean, exp(q_log_var)) || N(p_mean, exp(p_log_var))) summed over the last "
      "dimension.")
KL_NONNEG = "kl_normal, Returns: [...] the KL divergence (>= 0), last dim summed out."
KL_BROADCAST = "kl_normal, Args: p_mean, p_log_var: [..., D] (broadcastable against q's arguments)."
SAMPLE = "sample_gaussian: z = mean + exp(0.5 * log_var) * eps with eps ~ N(0, I)."
SAMPLE_GRAD = ("sample_gaussian: The sample is a differentiable function of mean and log_var, also when eps is drawn "
               "here.")
SAMPLE_NONE = ("sample_gaussian, Args: eps: [..., D] standard normal noise, or None to draw it with torch.randn in "
               "the broadcast shape of mean and log_var (same dtype and device as mean).")
SAMPLE_BROADCAST = "sample_gaussian, Args: log_var: [..., D] (broadcastable against mean)."
BERNOULLI = "log_bernoulli_with_logits: log p(x) = sum_d [ x_d * log sigmoid(l_d) + (1 - x_d) * log(1 - sigmoid(l_d)) ]"
BERNOULLI_FRACTIONAL = "log_bernoulli_with_logits: x may be fractional (in [0, 1])."
BERNOULLI_STABLE = ("log_bernoulli_with_logits: values and gradients stay finite for logits as large as |100| "
                    "(log(sigmoid(l)) is not).")
BERNOULLI_BROADCAST = "log_bernoulli_with_logits, Args: logits: [..., D] Bernoulli logits (broadcastable against x)."
LME = "log_mean_exp: Numerically stable log(mean(exp(x), dim))."
LME_STABLE = "log_mean_exp: values like x = -1000 or +1000 do not underflow or overflow."
LME_DIM = ("log_mean_exp, Args: dim: the dimension to average over (negative values count from the end, as in "
           "torch); it is removed from the result.")
NELBO_STEPS = ("negative_elbo_bound: 2. Draw ONE reparameterised sample per example; 4. rec = -mean_b log p(x_b | "
               "z_b); 5. kl = mean_b KL(q(z | x_b) || N(0, I)) (closed form); 6. nelbo = kl + rec.")
NELBO_RETURNS = ("negative_elbo_bound, Returns: (nelbo, kl, rec): three scalars (0-dim tensors), each averaged over "
                 "the batch, differentiable in the model parameters.")
IWAE = ("negative_iwae_bound: niwae = -mean_b log (1/k) sum_{i=1..k} p(x_b | z_i) p(z_i) / q(z_i | x_b), "
        "z_i ~ q(z | x_b).")
IWAE_K = ("negative_iwae_bound: With k = 1 this is an unbiased estimate of the negative ELBO; it decreases (the "
          "bound tightens) as k grows.")
IWAE_RETURNS = "negative_iwae_bound, Returns: scalar (0-dim tensor), differentiable in the model parameters."

KL_PIN = ("kl_matches_monte_carlo",)
SAMPLE_PIN = ("sample_given_eps_distribution",)
SAMPLE_NONE_PIN = ("sample_distribution",)
BERNOULLI_PIN = ("bernoulli_normalised",)
LME_PIN = ("lme_gradient",)
NELBO_PIN = ("nelbo_kl_term", "nelbo_rec_expectation")
IWAE_PIN = ("iwae_k1_is_elbo", "iwae_tightens")


def rounding(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def log_prob_atol(dtype: torch.dtype, logits: torch.Tensor) -> float:
    """Absolute slack for sums of Bernoulli log-probabilities: rounding of terms as large as |logit|, plus
    1e-8 per dim (library functions drop tails below 2e-9 once |logit| > 20)."""
    return 8 * rounding(dtype) * (float(logits.double().abs().sum(-1).max()) + 1) + 1e-8 * logits.shape[-1]


def broadcastable_to(shape: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes that broadcast to ``shape`` without enlarging it, keeping its last dim (D or 1)."""
    @st.composite
    def draw(draw_):
        drop = draw_(st.integers(0, len(shape) - 1))
        kept = shape[drop:]
        return tuple(draw_(st.sampled_from(sorted({n, 1}))) for n in kept)

    return draw()


def bernoulli_x(data, shape: tuple[int, ...], dtype: torch.dtype, *, binary: bool | None = None) -> torch.Tensor:
    """x in [0, 1], fractional or (drawn, unless ``binary`` says) rounded to 0/1."""
    x = data.draw(tensors(shape, dtype, low=0.0, high=1.0), label="x")
    if binary if binary is not None else data.draw(st.booleans(), label="x rounded to 0/1"):
        x = x.round()
    return x


def bernoulli_draws(data, shape: tuple[int, ...], dtype: torch.dtype, *, binary: bool | None = None):
    """x in [0, 1] (binary or fractional) and logits in [-100, 100], each drawn under its own label."""
    x = bernoulli_x(data, shape, dtype, binary=binary)
    return x, data.draw(tensors(shape, dtype, low=-100.0, high=100.0), label="logits")


# ---------------------------------------------------------------------- kl_normal


@checks.add("kl_normal", "matches a Monte-Carlo estimate", points=2, examples=5)
@given(data=st.data(), d=st.integers(1, 4))
def kl_matches_monte_carlo(student, data, d):
    """False-fail probability: a 6-sigma z-test per example, < 1e-8 per check."""
    q = data.draw(gaussians((d,), torch.float64, mean_bound=2.0, log_var_range=(-1.5, 1.5)), label="q")
    p = data.draw(gaussians((d,), torch.float64, mean_bound=2.0, log_var_range=(-1.5, 1.5)), label="p")
    with handout(KL):
        kl = expect_tensor(student.kl_normal(q.mean, q.log_var, p.mean, p.log_var), shape=(), dtype=torch.float64,
                           what="KL")
        gen = torch.Generator().manual_seed(0)
        n = 200_000
        z = q.mean + (0.5 * q.log_var).exp() * torch.randn(n, d, generator=gen, dtype=torch.float64)
        log_q = torch.distributions.Normal(q.mean, (0.5 * q.log_var).exp()).log_prob(z).sum(-1)
        log_p = torch.distributions.Normal(p.mean, (0.5 * p.log_var).exp()).log_prob(z).sum(-1)
        ratio = log_q - log_p
        estimate, se = ratio.mean().item(), ratio.std().item() / math.sqrt(n)
        expect(abs(kl.item() - estimate) <= Z_FAIL * se + 1e-9,
               f"KL: got {kl.item():.6g}, expected {estimate:.6g} ± {se:.2g} "
               f"(Monte-Carlo estimate of E_q[log q(z) - log p(z)] from {n} samples)")


@checks.add("kl_normal", "zero for identical distributions", requires=KL_PIN)
@given(q=gaussians(shapes(min_dims=1, max_dims=3)))
def kl_self_is_zero(student, q):
    with handout(KL):
        kl = student.kl_normal(q.mean, q.log_var, q.mean, q.log_var)
        expect_close(kl, torch.zeros(q.shape[:-1], dtype=q.dtype), atol=1e-5 * q.shape[-1], what="KL(q || q)")


@checks.add("kl_normal", "non-negative, with finite values and gradients for means up to |1e3| and log-variances "
            "in [-30, 30]", requires=KL_PIN)
@given(data=st.data(), batch=shapes(min_dims=0, max_dims=2, max_side=4), d=st.integers(1, 6), dtype=dtypes())
def kl_non_negative(student, data, batch, d, dtype):
    shape = (*batch, d)
    q, p = data.draw(gaussians(shape, dtype), label="q"), data.draw(gaussians(shape, dtype), label="p")
    args = (q.mean, q.log_var, p.mean, p.log_var)
    with handout(KL_NONNEG, STABLE):
        r = student.call("kl_normal", *args, wrt=args)
        kl = expect_tensor(r.value, shape=batch, dtype=dtype, what="KL")
        # rounding slack: KL sums terms as large as |log_var| per dim
        slack = (1e-4 if dtype == torch.float32 else 1e-10) * d * 61
        expect(bool((kl >= -slack).all()), f"KL(q || p) must be >= 0; got {kl.min().item():.6g}")
        for name, t in zip(("q_mean", "q_log_var", "p_mean", "p_log_var"), args):
            g = r.grad(t)
            expect(g is not None, f"no gradient reached {name} (keep the KL differentiable: no .detach(), no .item())")
            expect_tensor(g, shape=shape, what=f"d KL / d {name}")
        if dtype == torch.float64:
            expect_derivative(student, "kl_normal", args, r, args, what="d KL / d (q_mean, q_log_var, p_mean, p_log_var)")


@checks.add("kl_normal", "sums over the last dim", requires=KL_PIN)
@given(data=st.data(), batch=shapes(min_dims=0, max_dims=2, max_side=4), d=st.integers(1, 5), dtype=dtypes())
def kl_sums_last_dim(student, data, batch, d, dtype):
    shape = (*batch, d)
    q = data.draw(gaussians(shape, dtype, mean_bound=10.0, log_var_range=(-3, 3)), label="q")
    p = data.draw(gaussians(shape, dtype, mean_bound=10.0, log_var_range=(-3, 3)), label="p")
    with handout(KL, LAST_DIM):
        whole = expect_tensor(student.kl_normal(q.mean, q.log_var, p.mean, p.log_var), shape=batch, dtype=dtype,
                              what="KL over all dims")
        parts = [student.kl_normal(q.mean[..., i:i + 1], q.log_var[..., i:i + 1], p.mean[..., i:i + 1],
                                   p.log_var[..., i:i + 1]) for i in range(d)]
        parts = [expect_tensor(t, shape=batch, what=f"KL of dim {i} alone") for i, t in enumerate(parts)]
        expect_close(whole, torch.stack(parts).sum(0), what="KL over all dims vs the sum of per-dim KLs")


@checks.add("kl_normal", "broadcasts p against q", requires=KL_PIN)
@given(data=st.data(), q_shape=shapes(min_dims=1, max_dims=3, max_side=4), dtype=dtypes())
def kl_broadcasts(student, data, q_shape, dtype):
    q = data.draw(gaussians(q_shape, dtype, mean_bound=10.0, log_var_range=(-3, 3)), label="q")
    p_mean = data.draw(tensors(broadcastable_to(q_shape), dtype, low=-10, high=10), label="p_mean")
    p_log_var = data.draw(tensors(broadcastable_to(q_shape), dtype, low=-3, high=3), label="p_log_var")
    with handout(KL_BROADCAST, LAST_DIM):
        broadcast = student.kl_normal(q.mean, q.log_var, p_mean, p_log_var)
        expanded = student.kl_normal(q.mean, q.log_var, p_mean.expand(q_shape).clone(),
                                     p_log_var.expand(q_shape).clone())
        expect_tensor(expanded, shape=q_shape[:-1], dtype=dtype, what="KL with p expanded to q's shape")
        expect_close(broadcast, expanded,
                     what=f"KL with p_mean {list(p_mean.shape)}, p_log_var {list(p_log_var.shape)} (broadcast) "
                          f"vs p expanded to q's shape {list(q_shape)}")


@checks.add("kl_normal", "keeps the dtype and leaves inputs unchanged", requires=KL_PIN)
@given(q=gaussians(shapes(min_dims=2, max_dims=2)), p_shift=st.floats(-3, 3))
def kl_dtype_and_inputs(student, q, p_shift):
    p_mean, p_log_var = q.mean + p_shift, q.log_var - p_shift
    with handout(DTYPE):
        r = student.call("kl_normal", q.mean, q.log_var, p_mean, p_log_var, return_inputs=True)
        expect_tensor(r.value, shape=q.shape[:-1], dtype=q.dtype, what="KL")
        expect_unchanged(r, q.mean, q.log_var, p_mean, p_log_var)


@checks.add("kl_normal", "exact gradients in all four arguments")
@given(data=st.data(), batch=shapes(min_dims=0, max_dims=2, max_side=4), d=st.integers(1, 5), dtype=dtypes())
def kl_gradients(student, data, batch, d, dtype):
    shape = (*batch, d)
    q = data.draw(gaussians(shape, dtype, mean_bound=10.0, log_var_range=(-3, 3)), label="q")
    p = data.draw(gaussians(shape, dtype, mean_bound=10.0, log_var_range=(-3, 3)), label="p")
    args = (q.mean, q.log_var, p.mean, p.log_var)
    with handout(KL, DIFFERENTIABLE):
        r = student.call("kl_normal", *args, wrt=args)
        qm, ql, pm, pl = (t.double() for t in args)
        ratio, scaled = (ql - pl).exp(), (qm - pm) * (-pl).exp()
        expected = {"q_mean": scaled, "q_log_var": 0.5 * (ratio - 1), "p_mean": -scaled,
                    "p_log_var": 0.5 * (1 - ratio - (qm - pm) * scaled)}
        for (name, value), t in zip(expected.items(), args):
            g = r.grad(t)
            expect(g is not None, f"no gradient reached {name} (keep the KL differentiable: no .detach(), no .item())")
            expect_close(g, value.to(dtype), what=f"d KL / d {name}")
        if dtype == torch.float64:
            expect_derivative(student, "kl_normal", args, r, args, what="d KL / d (q_mean, q_log_var, p_mean, p_log_var)")


# ---------------------------------------------------------------------- sample_gaussian


@checks.add("sample_gaussian", "with eps ~ N(0, I) given, z ~ N(mean, exp(log_var)), a function of eps increasing "
            "with it", points=2, examples=5)
@given(drawn_columns=gaussians((3,), torch.float64))
def sample_given_eps_distribution(student, drawn_columns):
    """z for 20000 rows of one (mean, log_var) per column, with the judge's eps.

    Two fixed columns (-3, log_var 2; 250, log_var -8) and three drawn over the
    stable domain. With z = mean + exp(0.5 log_var) eps, (z - mean) / exp(0.5 log_var)
    is the judge's eps, whose Kolmogorov-Smirnov p-values (seed 0) are fixed and
    far above the 1e-8 threshold: the check cannot fail a correct function.
    """
    from scipy import stats  # here, not at the top: importing it takes a second
    n = 20_000
    mean = torch.cat([torch.tensor([-3.0, 250.0], dtype=torch.float64), drawn_columns.mean])
    log_var = torch.cat([torch.tensor([2.0, -8.0], dtype=torch.float64), drawn_columns.log_var])
    eps = torch.randn(n, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    means, log_vars = mean.expand(n, 5).clone(), log_var.expand(n, 5).clone()
    with handout(SAMPLE):
        z = expect_tensor(student.sample_gaussian(means, log_vars, eps), shape=(n, 5), dtype=torch.float64, what="z")
        again = student.call("sample_gaussian", means, log_vars, eps, seed_offset=1).value
        expect(isinstance(again, torch.Tensor) and torch.equal(again, z),
               "z changed between two calls with the same eps: with eps given, z must be a function of eps "
               "(do not draw new noise)")
        expect(bool(((z - mean) * eps >= 0).all()),
               "z - mean must have the sign of eps (z increases with eps)")
        u = (z - mean) / (0.5 * log_var).exp()
        for col in range(5):
            result = stats.kstest(u[:, col].numpy(), "norm")
            expect(result.pvalue > 1e-8,
                   f"with eps ~ N(0, 1), samples with mean={mean[col].item():.6g}, log_var={log_var[col].item():.6g} "
                   f"are not N(mean, exp(log_var)): (z - mean) / exp(0.5 log_var) has mean "
                   f"{u[:, col].mean().item():.4g} (expected 0), std {u[:, col].std().item():.4g} (expected 1), "
                   f"Kolmogorov-Smirnov p = {result.pvalue:.2g}")


@checks.add("sample_gaussian", "exact reparameterisation gradients: dz/dmean = 1, dz/dlog_var = 0.5 (z - mean)",
            points=2, requires=SAMPLE_PIN)
@given(data=st.data(), shape=shapes(max_dims=2), dtype=dtypes())
def sample_gradients(student, data, shape, dtype):
    g = data.draw(gaussians(shape, dtype, mean_bound=100.0, log_var_range=(-10, 10)), label="gaussian")
    eps = data.draw(tensors(shape, dtype, low=-4, high=4), label="eps")
    cot = data.draw(tensors(shape, dtype, low=-2, high=2), label="cotangent")
    with handout(SAMPLE, SAMPLE_GRAD):
        r = student.call("sample_gaussian", g.mean, g.log_var, eps, wrt=(g.mean, g.log_var), cotangent=cot)
        z = expect_tensor(r.value, shape=shape, dtype=dtype, what="z")
        d_mean, d_log_var = r.grad(g.mean), r.grad(g.log_var)
        expect(d_mean is not None, "z does not depend on mean through autograd (no gradient reached mean)")
        expect(d_log_var is not None, "z does not depend on log_var through autograd (no gradient reached log_var)")
        expect_close(d_mean, cot, what="gradient wrt mean (cotangent * 1)")
        expected = cot.double() * 0.5 * (z.double() - g.mean.double())
        expect_close(d_log_var, expected.to(dtype), what="gradient wrt log_var (cotangent * 0.5 (z - mean))",
                     atol=1e-5 * float(z.abs().max() + 1))
        if dtype == torch.float64:
            expect_derivative(student, "sample_gaussian", (g.mean, g.log_var, eps), r, (g.mean, g.log_var),
                              cotangent=cot, what="the gradient wrt (mean, log_var)")


@checks.add("sample_gaussian", "broadcasts log_var against mean, keeps the dtype and leaves inputs unchanged",
            requires=SAMPLE_PIN)
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3, max_side=4), dtype=dtypes())
def sample_broadcasts(student, data, shape, dtype):
    mean = data.draw(tensors(shape, dtype, low=-100, high=100), label="mean")
    log_var = data.draw(tensors(broadcastable_to(shape), dtype, low=-10, high=10), label="log_var")
    eps = data.draw(tensors(shape, dtype, low=-4, high=4), label="eps")
    with handout(SAMPLE_BROADCAST, DTYPE):
        r = student.call("sample_gaussian", mean, log_var, eps, return_inputs=True)
        z = expect_tensor(r.value, shape=shape, dtype=dtype, what=f"z with log_var of shape {list(log_var.shape)}")
        expect_unchanged(r, mean, log_var, eps)
        expanded = student.sample_gaussian(mean, log_var.expand(shape).clone(), eps)
        expect_close(z, expanded, what=f"z with log_var {list(log_var.shape)} (broadcast) vs expanded to {list(shape)}")


@checks.add("sample_gaussian", "with eps=None, draws independent N(mean, exp(log_var)) samples", points=2)
def sample_distribution(student):
    """Standardised samples must be i.i.d. N(0, 1).

    Kolmogorov-Smirnov test at p < 1e-7 per column, and |correlation| below
    6 / sqrt(n) between columns and between consecutive rows (each 2e-9):
    false-fail probability < 1e-6 in all.
    """
    from scipy import stats  # here, not at the top: importing it takes a second
    n = 100_000
    mean = torch.tensor([-3.0, 0.5, 250.0], dtype=torch.float64)
    log_var = torch.tensor([2.0, -1.0, -8.0], dtype=torch.float64)
    with handout(SAMPLE, SAMPLE_NONE):
        z = student.sample_gaussian(mean.expand(n, 3).clone(), log_var.expand(n, 3).clone())
        z = expect_tensor(z, shape=(n, 3), dtype=torch.float64, what="z")
        u = (z - mean) / (0.5 * log_var).exp()
        for col in range(3):
            result = stats.kstest(u[:, col].numpy(), "norm")
            expect(result.pvalue > 1e-7,
                   f"samples with mean={mean[col].item():g}, log_var={log_var[col].item():g} are not "
                   f"N(mean, exp(log_var)): standardised mean {u[:, col].mean().item():.4f} (expected 0), std "
                   f"{u[:, col].std().item():.4f} (expected 1), Kolmogorov-Smirnov p = {result.pvalue:.2g}")
        bound = Z_FAIL / math.sqrt(n)
        for name, a, b in (("columns 0 and 1", u[:, 0], u[:, 1]), ("consecutive rows", u[:-1, 0], u[1:, 0])):
            r = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
            expect(abs(r) < bound,
                   f"samples are correlated between {name} (r = {r:.4f}); draw fresh noise for every element")


@checks.add("sample_gaussian", "with eps=None, reparameterised: dz/dmean = 1, dz/dlog_var = 0.5 (z - mean)",
            requires=SAMPLE_NONE_PIN)
@given(data=st.data(), shape=shapes(max_dims=2), dtype=dtypes())
def sample_none_gradients(student, data, shape, dtype):
    g = data.draw(gaussians(shape, dtype, mean_bound=100.0, log_var_range=(-10, 10)), label="gaussian")
    cot = data.draw(tensors(shape, dtype, low=-2, high=2), label="cotangent")
    with handout(SAMPLE, SAMPLE_GRAD):
        r = student.call("sample_gaussian", g.mean, g.log_var, wrt=(g.mean, g.log_var), cotangent=cot)
        z = expect_tensor(r.value, shape=shape, dtype=dtype, what="z")
        d_mean, d_log_var = r.grad(g.mean), r.grad(g.log_var)
        expect(d_mean is not None and d_log_var is not None,
               "with eps=None, no gradient reached mean or log_var: draw eps ~ N(0, I) and return "
               "mean + exp(0.5 log_var) * eps (torch.normal(mean, std) is not reparameterised)")
        expect_close(d_mean, cot, what="gradient wrt mean (cotangent * 1)")
        expected = cot.double() * 0.5 * (z.double() - g.mean.double())
        expect_close(d_log_var, expected.to(dtype), what="gradient wrt log_var (cotangent * 0.5 (z - mean))",
                     atol=1e-5 * float(z.abs().max() + 1))
        if dtype == torch.float64:
            expect_derivative(student, "sample_gaussian", (g.mean, g.log_var), r, (g.mean, g.log_var),
                              cotangent=cot, what="the gradient wrt (mean, log_var)")


@checks.add("sample_gaussian", "with eps=None, draws in the broadcast shape of mean and log_var, keeps the dtype "
            "and leaves inputs unchanged", requires=SAMPLE_NONE_PIN)
@given(data=st.data(), shape=shapes(), dtype=dtypes())
def sample_none_dtype(student, data, shape, dtype):
    mean = data.draw(tensors(shape, dtype, low=-100, high=100), label="mean")
    log_var = data.draw(tensors(broadcastable_to(shape), dtype, low=-10, high=10), label="log_var")
    with handout(SAMPLE_NONE, SAMPLE_BROADCAST, DTYPE):
        r = student.call("sample_gaussian", mean, log_var, return_inputs=True)
        expect_tensor(r.value, shape=shape, dtype=dtype, what=f"z with log_var of shape {list(log_var.shape)}")
        expect_unchanged(r, mean, log_var)


# ---------------------------------------------------------------------- log_bernoulli_with_logits


@checks.add("log_bernoulli_with_logits", "a normalised distribution over binary x whose log-odds are the logits "
            "(logits up to |100|)", points=2)
@given(data=st.data(), batch=shapes(min_dims=0, max_dims=2, max_side=3), d=st.integers(1, 4), dtype=dtypes())
def bernoulli_normalised(student, data, batch, d, dtype):
    """log p(x) for every x in {0,1}^D: exp(log p) sums to 1, and flipping x_d from 0 to 1 adds logits_d."""
    logits = data.draw(tensors((*batch, d), dtype, low=-100.0, high=100.0), label="logits")
    every_x = binary_vectors(d)  # [2^D, D]
    n = len(every_x)
    x = every_x.reshape(n, *[1] * len(batch), d).expand(n, *batch, d).to(dtype).clone()
    with handout(BERNOULLI, BERNOULLI_STABLE):
        log_p = student.log_bernoulli_with_logits(x, logits.expand(n, *batch, d).clone())
        log_p = expect_tensor(log_p, shape=(n, *batch), dtype=dtype,
                              what=f"log p(x) for all {n} binary x of D={d} (stacked in a leading dim)").double()
        atol = log_prob_atol(dtype, logits)
        expect_close(torch.logsumexp(log_p, 0), torch.zeros(batch, dtype=torch.float64), atol=atol,
                     what="log sum_x p(x) over every binary x (a distribution sums to 1)")
        for i in range(d):
            off = [j for j in range(n) if not j >> i & 1]
            on = [j | 1 << i for j in off]
            expect_close(log_p[on] - log_p[off], logits[..., i].double().expand(len(off), *batch), atol=atol,
                         what=f"log p(x with x_{i} = 1) - log p(x with x_{i} = 0) (the log-odds are logits[..., {i}])")


@checks.add("log_bernoulli_with_logits", "x may be fractional: linear in each x_d, keeps the dtype and leaves "
            "inputs unchanged", requires=BERNOULLI_PIN)
@given(data=st.data(), batch=shapes(min_dims=0, max_dims=2, max_side=3), d=st.integers(1, 4), dtype=dtypes())
def bernoulli_fractional(student, data, batch, d, dtype):
    """log p(x) = log p(0) + sum_d x_d [log p(e_d) - log p(0)], e_d the d-th unit vector."""
    x, logits = bernoulli_draws(data, (*batch, d), dtype, binary=False)
    corners = torch.cat([torch.zeros(1, d), torch.eye(d)]).double()  # 0, e_1, ..., e_D
    n = d + 1
    with handout(BERNOULLI, BERNOULLI_FRACTIONAL, DTYPE):
        at_corners = student.log_bernoulli_with_logits(
            corners.reshape(n, *[1] * len(batch), d).expand(n, *batch, d).to(dtype).clone(),
            logits.expand(n, *batch, d).clone())
        at_corners = expect_tensor(at_corners, shape=(n, *batch), dtype=dtype,
                                   what="log p at x = 0 and x = e_d").double()
        slopes = at_corners[1:] - at_corners[:1]  # [D, *batch]
        expected = at_corners[0] + (x.double().movedim(-1, 0) * slopes).sum(0)
        r = student.call("log_bernoulli_with_logits", x, logits, return_inputs=True)
        got = expect_tensor(r.value, shape=batch, dtype=dtype, what="log p(x)")
        atol = 2 * d * log_prob_atol(dtype, logits)
        expect_close(got, expected.to(dtype), atol=atol,
                     what="log p(x) vs log p(0) + sum_d x_d [log p(e_d) - log p(0)] (linear in each x_d)")
        expect_unchanged(r, x, logits)


@checks.add("log_bernoulli_with_logits", "finite, exact gradients for logits up to |100|")
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), dtype=dtypes())
def bernoulli_gradients(student, data, shape, dtype):
    x, logits = bernoulli_draws(data, shape, dtype)
    with handout(BERNOULLI, BERNOULLI_STABLE):
        r = student.call("log_bernoulli_with_logits", x, logits, wrt=(logits,))
        grad = r.grad(logits)
        expect(grad is not None, "no gradient reached the logits (is the result computed with autograd?)")
        expected = x.double() - torch.sigmoid(logits.double())
        expect_close(grad, expected.to(x.dtype), what="d log p / d logits (= x - sigmoid(logits))", atol=1e-6)
        if dtype == torch.float64:
            expect_derivative(student, "log_bernoulli_with_logits", (x, logits), r, logits, what="d log p / d logits")


@checks.add("log_bernoulli_with_logits", "broadcasts x [B, D] against logits [k, B, D] and logits [D] against x",
            requires=BERNOULLI_PIN)
@given(data=st.data(), b=st.integers(1, 4), d=st.integers(1, 5), k=st.integers(1, 4), dtype=dtypes())
def bernoulli_broadcasts(student, data, b, d, k, dtype):
    x = bernoulli_x(data, (b, d), dtype)
    logits = data.draw(tensors((k, b, d), dtype, low=-100.0, high=100.0), label="logits")
    with handout(BERNOULLI_BROADCAST, LAST_DIM):
        many = student.log_bernoulli_with_logits(x, logits)
        expanded = student.log_bernoulli_with_logits(x.expand(k, b, d).clone(), logits)
        expect_tensor(expanded, shape=(k, b), dtype=dtype, what="log p(x) with x expanded to [k, B, D]")
        expect_close(many, expanded, what="log p(x) with x [B, D] and logits [k, B, D] (broadcast) vs x expanded")
        shared = student.log_bernoulli_with_logits(x, logits[0, 0])
        one_by_one = student.log_bernoulli_with_logits(x, logits[0, 0].expand(b, d).clone())
        expect_tensor(one_by_one, shape=(b,), dtype=dtype, what="log p(x) with logits expanded to [B, D]")
        expect_close(shared, one_by_one, what="log p(x) with x [B, D] and logits [D] (broadcast) vs logits expanded")


@checks.add("log_bernoulli_with_logits", "stable at the extremes: logits of ±100 with x of 0, 0.5 and 1",
            requires=BERNOULLI_PIN)
def bernoulli_extremes(student):
    """Finite values and gradients, and the relations between x = 0, 0.5 and 1 at each logit."""
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).removeprefix("torch.")
        logits = torch.tensor([-100.0, -40.0, -1.0, 0.0, 1.0, 40.0, 100.0], dtype=dtype).repeat(3, 1)[..., None]
        x = torch.tensor([0.0, 0.5, 1.0], dtype=dtype)[:, None, None].expand(3, 7, 1).clone()
        with handout(BERNOULLI_STABLE, BERNOULLI_FRACTIONAL):
            r = student.call("log_bernoulli_with_logits", x, logits, wrt=(logits,))
            got = expect_tensor(r.value, shape=(3, 7), dtype=dtype, what=f"log p(x) per (x, logit) pair in {name}")
            grad = r.grad(logits)
            expect(grad is not None, "no gradient reached the logits (is the result computed with autograd?)")
            expect_tensor(grad, shape=(3, 7, 1), what=f"d log p / d logits in {name}")
            if dtype == torch.float64:
                expect_derivative(student, "log_bernoulli_with_logits", (x, logits), r, logits,
                                  what=f"d log p / d logits in {name}")
            at0, half, at1 = got.double()
            ones = logits[0, :, 0].double()
            expect_close(at1 - at0, ones, what=f"log p(1) - log p(0) (= the logit) in {name}", atol=1e-4)
            expect_close(torch.logaddexp(at0, at1), torch.zeros(7, dtype=torch.float64),
                         what=f"log (p(0) + p(1)) (= 0) in {name}", atol=1e-5)
            expect_close(half, (at0 + at1) / 2, what=f"log p(0.5) (= the mean of log p(0) and log p(1)) in {name}",
                         atol=1e-4)


# ---------------------------------------------------------------------- log_mean_exp


@checks.add("log_mean_exp", "gradient is softmax(x) along dim, and equal entries c give c (these pin the value)",
            points=2)
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), dtype=dtypes())
def lme_gradient(student, data, shape, dtype):
    x = data.draw(tensors(shape, dtype, low=-20, high=20), label="x")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    with handout(LME, LME_DIM):
        r = student.call("log_mean_exp", x, dim, wrt=(x,))
        grad = r.grad(x)
        expect(grad is not None, "no gradient reached x (keep the result differentiable: no .detach(), no .item())")
        expect_close(grad, torch.softmax(x.double(), dim).to(dtype),
                     what=f"d log_mean_exp(x, dim={dim}) / dx (= softmax(x, dim))")
        if dtype == torch.float64:
            expect_derivative(student, "log_mean_exp", (x, dim), r, x, what=f"d log_mean_exp(x, dim={dim}) / dx")
        c = x.mean(dim, keepdim=True)
        flat = student.log_mean_exp(c.expand(shape).clone(), dim)
        expect_close(flat, c.squeeze(dim), what=f"log_mean_exp(x, dim={dim}) for x equal to c along dim (= c)")


@checks.add("log_mean_exp", "stable for values up to |1000|: log_mean_exp(x + c) = log_mean_exp(x) + c", points=2,
            requires=LME_PIN)
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), dtype=dtypes(), c=st.floats(-1000, 1000))
def lme_shift(student, data, shape, dtype, c):
    x = data.draw(tensors(shape, dtype, low=-5, high=5), label="x")
    dim = data.draw(st.integers(0, len(shape) - 1), label="dim")
    with handout(LME, LME_STABLE):
        base = expect_tensor(student.log_mean_exp(x, dim), dtype=dtype, what=f"log_mean_exp(x, dim={dim})")
        expect_close(student.log_mean_exp(x + c, dim), (base.double() + (x + c).double().sub(x.double()).mean(dim))
                     .to(dtype), what=f"log_mean_exp(x + {c:g}, dim={dim}) vs log_mean_exp(x, dim={dim}) + {c:g}",
                     atol=1e-3 if dtype == torch.float32 else 1e-9)


@checks.add("log_mean_exp", "removes dim (negative dims count from the end), keeps the dtype, leaves x unchanged",
            requires=LME_PIN)
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=4), dtype=dtypes())
def lme_dim_and_inputs(student, data, shape, dtype):
    x = data.draw(tensors(shape, dtype, low=-20, high=20), label="x")
    dim = data.draw(st.integers(0, len(shape) - 1), label="dim")
    kept = shape[:dim] + shape[dim + 1:]
    with handout(LME_DIM, DTYPE):
        r = student.call("log_mean_exp", x, dim, return_inputs=True)
        got = expect_tensor(r.value, shape=kept, dtype=dtype, what=f"log_mean_exp(x, dim={dim}) of x {list(shape)}")
        expect_unchanged(r, x)
        negative = student.log_mean_exp(x, dim - len(shape))
        expect_close(negative, got, what=f"log_mean_exp(x, dim={dim - len(shape)}) vs dim={dim}")


# ---------------------------------------------------------------------- negative_elbo_bound


@checks.add("negative_elbo_bound", "kl is the batch mean of KL(q(z|x) || N(0, I))", requires=NELBO_PIN[1:],
            examples=10)
@given(dtype=dtypes(), b=st.integers(1, 6), seed=st.integers(0, 2**16))
def nelbo_kl_term(student, dtype, b, seed):
    """kl vs a Monte-Carlo estimate of mean_b E_q[log q(z|x_b) - log N(z; 0, I)] from 50000 samples per
    example; a 6-sigma z-test (false-fail < 1e-8 per example, 10 examples)."""
    gen = torch.Generator().manual_seed(seed)
    fixture, model = vae_fixture(5, 3, [8], dtype, generator=gen)
    x = torch.bernoulli(torch.full((b, 5), 0.5, dtype=torch.float64), generator=gen).to(dtype)
    with handout(NELBO_STEPS):
        _, kl, _ = expect_tuple(student.negative_elbo_bound(fixture, x), 3, what="negative_elbo_bound(model, x)")
        kl = expect_tensor(kl, shape=(), dtype=dtype, what="kl")
        with torch.no_grad():
            mean, log_var = (t.double() for t in model.encode(x))
        q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
        n = 50_000
        z = q.sample((n,))  # [n, B, Z] (seeded by the judge)
        ratio = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1)  # [n, B]
        estimate = ratio.mean().item()
        se = math.sqrt(float(ratio.var(0).sum()) / n) / b
        slack = Z_FAIL * se + (1e-3 * abs(estimate) if dtype == torch.float32 else 0.0)
        expect(abs(kl.item() - estimate) <= slack,
               f"kl over a batch of {b}: got {kl.item():.6g}, expected {estimate:.6g} ± {se:.2g} (Monte-Carlo "
               f"estimate of mean_b E_q[log q(z|x_b) - log N(z; 0, I)])")


@checks.add("negative_elbo_bound", "returns three scalars with nelbo = kl + rec, leaving x unchanged",
            requires=NELBO_PIN)
@given(dtype=dtypes(), b=st.integers(1, 6), seed=st.integers(0, 2**16))
def nelbo_scalars(student, dtype, b, seed):
    gen = torch.Generator().manual_seed(seed)
    fixture, _ = vae_fixture(5, 2, [8], dtype, generator=gen)
    x = torch.bernoulli(torch.full((b, 5), 0.5, dtype=torch.float64), generator=gen).to(dtype)
    with handout(NELBO_RETURNS, NELBO_STEPS, DTYPE):
        r = student.call("negative_elbo_bound", fixture, x, return_inputs=True)
        nelbo, kl, rec = expect_tuple(r.value, 3, what="negative_elbo_bound(model, x)")
        for name, value in (("nelbo", nelbo), ("kl", kl), ("rec", rec)):
            expect_tensor(value, shape=(), dtype=dtype, what=name)
        expect_close(nelbo, kl + rec, what="nelbo vs kl + rec")
        expect_unchanged(r, x)


def _exact_on_every_binary_x(student, fn: str, d: int, bias: torch.Tensor, dtype: torch.dtype, copies: int,
                             *args) -> None:
    """With q(z|x) = p(z) = N(0, 1) and logits = bias whatever z, the bound is -log p(x) exactly, where
    p(x_d = 1) = sigmoid(bias_d) independently for each d: exp(-bound) sums to 1 over x in {0,1}^D and flipping
    x_d from 0 to 1 lowers the bound by bias_d."""
    fixture = linear_vae(0.0, 0.0, torch.zeros(d), bias, dtype)
    bounds = []
    for x in binary_vectors(d):
        out = student.call(fn, fixture, x.expand(copies, d).to(dtype).clone(), *args).value
        if fn == "negative_elbo_bound":
            out, kl, _ = expect_tuple(out, 3, what="negative_elbo_bound(model, x)")
            expect_close(kl, torch.zeros((), dtype=dtype), what="kl (q(z|x) equals the prior)", atol=1e-6)
        bounds.append(expect_tensor(out, shape=(), dtype=dtype, what=f"the bound for x = {x.tolist()}").double())
    bound = torch.stack(bounds)
    atol = log_prob_atol(dtype, bias)
    expect_close(torch.logsumexp(-bound, 0), torch.zeros((), dtype=torch.float64), atol=atol,
                 what="log sum_x exp(-bound(x)) over every binary x (the bound is -log p(x) here, and p sums to 1)")
    for i in range(d):
        off = [j for j in range(len(bound)) if not j >> i & 1]
        on = [j | 1 << i for j in off]
        expect_close(bound[off] - bound[on], bias[i].expand(len(off)), atol=atol,
                     what=f"bound(x with x_{i} = 0) - bound(x with x_{i} = 1) (= the decoder's bias {i}, the log-odds)")


@checks.add("negative_elbo_bound", "equals -log p(x) when the decoder ignores z and the encoder returns the prior",
            requires=NELBO_PIN, examples=10)
@given(data=st.data(), dtype=dtypes(), d=st.integers(1, 3), copies=st.integers(1, 4))
def nelbo_exact_for_trivial_model(student, data, dtype, d, copies):
    bias = data.draw(tensors((d,), torch.float64, low=-8, high=8), label="decoder_bias")
    with handout(NELBO_STEPS, NELBO_RETURNS):
        _exact_on_every_binary_x(student, "negative_elbo_bound", d, bias, dtype, copies)


@checks.add("negative_elbo_bound", "gradients reach the encoder through the reconstruction term", requires=NELBO_PIN)
def nelbo_encoder_gradients(student):
    gen = torch.Generator().manual_seed(1)
    fixture, _ = vae_fixture(6, 2, [8], torch.float64, generator=gen)
    x = torch.bernoulli(torch.full((16, 6), 0.5, dtype=torch.float64), generator=gen)
    with handout(NELBO_STEPS, NELBO_RETURNS):
        r = student.call("negative_elbo_bound", fixture, x, wrt=(fixture,), output=(2,))
        grads = r.grad(fixture) or {}
        enc = [g for name, g in grads.items() if name.startswith("encoder") and g is not None]
        expect(len(enc) > 0 and sum(float(g.abs().sum()) for g in enc) > 1e-8,
               "d rec / d encoder parameters is zero: z must be a reparameterised sample "
               "(mean + exp(0.5 log_var) eps), not detached or drawn with torch.normal")
        expect_derivative(student, "negative_elbo_bound", (fixture, x), r, fixture, output=(2,),
                          what="d rec / d model parameters")


# ---------------------------------------------------------------------- negative_iwae_bound


IWAE_CALL_SAMPLES = 250_000  # k * copies per call: a plain [k, B, D] float64 implementation needs ~8 MB a tensor


def _iwae_on_copies(student, k: int, n: int, seed_offset: int = 0) -> float:
    """niwae over n copies of X_ONE, in calls of equal size holding at most IWAE_CALL_SAMPLES samples
    (so a plainly written answer fits in Gradescope's 768 MB). The mean of equal-size calls' means is
    the mean over all n copies: the estimate, and so every bound on it, is unchanged."""
    fixture = linear_vae(ENC_MEAN, ENC_LOG_VAR, DEC_W, DEC_B)
    calls = -(-n * k // IWAE_CALL_SAMPLES)
    while n % calls:
        calls += 1
    values = []
    for i in range(calls):
        r = student.call("negative_iwae_bound", fixture, X_ONE.expand(n // calls, 4).clone(), k,
                         seed_offset=seed_offset + 100_003 * i)
        values.append(expect_tensor(r.value, shape=(), dtype=torch.float64, what=f"niwae (k={k})").item())
    return sum(values) / calls


@checks.add("negative_iwae_bound", "returns a scalar, equal to -log p(x) when the decoder ignores z",
            requires=IWAE_PIN, examples=10)
@given(data=st.data(), dtype=dtypes(), d=st.integers(1, 3), copies=st.integers(1, 4), k=st.integers(1, 20))
def iwae_exact_for_trivial_model(student, data, dtype, d, copies, k):
    bias = data.draw(tensors((d,), torch.float64, low=-8, high=8), label="decoder_bias")
    with handout(IWAE, IWAE_RETURNS):
        _exact_on_every_binary_x(student, "negative_iwae_bound", d, bias, dtype, copies, k)


# Relations between the student's own bounds on a drawn 1-D latent model (no expected numbers: the value
# pins on a fixed model, with -log p(x) by quadrature, are hidden checks).
RELATION_CALLS, RELATION_COPIES = 20, 1000  # per estimate: 20 call means over 1000 copies each
T_FAIL = 8.0  # Welch t on two sets of 20 call means (>= 19 degrees of freedom): P(t > 8) < 1e-7 per side


@st.composite
def linear_models(draw):
    """A 1-D latent VAE (q(z|x) = N(mean, exp(log_var)) whatever x, logits = z w + b) and a binary x [4]."""
    mean = draw(st.floats(-1.5, 1.5), label="encoder_mean")
    log_var = draw(st.floats(-2.0, 0.5), label="encoder_log_var")
    w = draw(tensors((4,), torch.float64, low=-3, high=3), label="decoder_w")
    b = draw(tensors((4,), torch.float64, low=-1, high=1), label="decoder_b")
    x = torch.tensor(draw(st.lists(st.integers(0, 1), min_size=4, max_size=4), label="x"), dtype=torch.float64)
    return linear_vae(mean, log_var, w, b), x


def _call_means(student, fn: str, fixture, x: torch.Tensor, *args, seed_offset: int) -> torch.Tensor:
    """[RELATION_CALLS] the scalar ``fn`` returns (its first output for the NELBO) over RELATION_COPIES copies
    of x, one independent call each."""
    means = []
    for i in range(RELATION_CALLS):
        r = student.call(fn, fixture, x.expand(RELATION_COPIES, x.numel()).clone(), *args,
                         seed_offset=seed_offset + 7919 * i)
        value = expect_tuple(r.value, 3, what=f"{fn}(model, x)")[0] if fn == "negative_elbo_bound" else r.value
        means.append(expect_tensor(value, shape=(), dtype=torch.float64, what=f"the value of {fn}").item())
    return torch.tensor(means, dtype=torch.float64)


def _welch(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(mean(a) - mean(b), its standard error) from two sets of independent call means; the standard error
    is at least float64 rounding of the means (a model whose bound does not vary gives exact equality)."""
    rounding = 1e-12 * max(1.0, float(a.abs().max()), float(b.abs().max())) / T_FAIL
    return float(a.mean() - b.mean()), max(math.sqrt(float(a.var() / a.numel() + b.var() / b.numel())), rounding)


@checks.add("negative_iwae_bound", "with k=1, has the NELBO's expectation (a drawn model)", requires=IWAE_PIN,
            uses=("negative_elbo_bound",),
            examples=3)
@given(model=linear_models())
def iwae_k1_matches_nelbo(student, model):
    """niwae(k=1) and the NELBO are unbiased estimates of the same -ELBO: Welch t-test on 20 + 20 call
    means of 1000 copies each, |t| < 8: false-fail < 2e-7 per example."""
    fixture, x = model
    with handout(IWAE, IWAE_K, NELBO_RETURNS):
        iwae = _call_means(student, "negative_iwae_bound", fixture, x, 1, seed_offset=1)
        nelbo = _call_means(student, "negative_elbo_bound", fixture, x, seed_offset=2)
        gap, se = _welch(iwae, nelbo)
        expect(abs(gap) <= T_FAIL * se,
               f"niwae with k=1 averages {iwae.mean().item():.5f} over {RELATION_CALLS * RELATION_COPIES} copies of x; "
               f"your negative_elbo_bound averages {nelbo.mean().item():.5f} (difference {gap:.4g} ± {se:.2g}): "
               "with one sample, the IWAE bound is the ELBO")


@checks.add("negative_iwae_bound", "its expectation does not increase with k (a drawn model)", requires=IWAE_PIN,
            examples=3)
@given(model=linear_models(), k=st.sampled_from([10, 50]))
def iwae_not_looser_with_k(student, model, k):
    """E niwae_k <= E niwae_1 (Burda et al. 2016, Theorem 1): one-sided Welch t-test on 20 + 20 call means,
    t < 8: false-fail < 1e-7 per example."""
    fixture, x = model
    with handout(IWAE, IWAE_K):
        loose = _call_means(student, "negative_iwae_bound", fixture, x, 1, seed_offset=3)
        tight = _call_means(student, "negative_iwae_bound", fixture, x, k, seed_offset=4)
        gap, se = _welch(tight, loose)
        expect(gap <= T_FAIL * se,
               f"niwae averages {loose.mean().item():.5f} with k=1 and {tight.mean().item():.5f} with k={k} "
               f"(difference {gap:.4g} ± {se:.2g}): more samples must not loosen the bound")
