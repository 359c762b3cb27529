"""Independent checks of the reference solutions in ``reference/``.

Every function of ``/work/shared/spec/student_api.md`` is compared against
``torch.distributions``, brute-force or numerical computations written
independently here (exact comparisons in float64), plus the conventions:
dtype/device kept, inputs untouched, finite values and gradients at the
extremes, mixed float32-data / float64-schedule calls.
"""

from __future__ import annotations

import ast
import inspect
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as Fn
from torch import distributions as D

from reference import diffusion, flows, foundations, gan, score, vae

F64 = torch.float64
ALL_MODULES = [foundations, vae, flows, gan, diffusion, score]


def close(a, b, rtol=1e-10, atol=1e-10):
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def all_finite(*tensors):
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def bshape(x):
    return (-1,) + (1,) * (x.dim() - 1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------
# Handout constraints: the template keeps signatures + docstrings only.
# ---------------------------------------------------------------------------

ALLOWED_IMPORTS = {
    "math", "torch", "torch.nn", "torch.nn.functional", "__future__", "typing",
}


@pytest.mark.parametrize("module", ALL_MODULES, ids=lambda m: m.__name__)
def test_module_is_handout_ready(module):
    tree = ast.parse(inspect.getsource(module))
    assert ast.get_docstring(tree), "module docstring missing"
    private = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= ALLOWED_IMPORTS
        elif isinstance(node, ast.ImportFrom):
            assert node.module in ALLOWED_IMPORTS
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith("_"):
            private.add(node.name)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            assert ast.get_docstring(node), f"{node.name} has no docstring"
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            used |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            assert not (used & private), f"{node.name} uses private helpers"
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        assert not item.name.startswith("_") or item.name == "__init__"


def test_spec_signatures():
    sig = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert sig(vae.sample_gaussian) == ["mean", "log_var", "eps"]
    assert inspect.signature(vae.sample_gaussian).parameters["eps"].default is None
    assert sig(vae.negative_iwae_bound) == ["model", "x", "k"]
    assert sig(foundations.gmm_em_step) == ["x", "log_weights", "means", "log_vars"]
    assert sig(flows.made_masks) == ["in_features", "hidden_sizes", "order"]
    assert sig(gan.gradient_penalty) == ["critic", "real", "fake", "alpha"]
    assert sig(gan.cycle_consistency_loss) == ["x", "y", "G", "F"]
    assert sig(diffusion.ddim_step) == ["model", "x_t", "t", "t_prev", "alpha_bars", "eta", "noise"]
    assert sig(diffusion.inpaint_merge) == ["x_prev", "y", "mask", "t_prev", "alpha_bars", "noise"]
    assert sig(score.langevin_step) == ["score_fn", "x", "step_size", "noise", "sigma"]
    assert inspect.signature(diffusion.cosine_beta_schedule).parameters["max_beta"].default == 0.999
    assert inspect.signature(score.vp_sde_marginal).parameters["beta_max"].default == 20.0


# ---------------------------------------------------------------------------
# hw1 foundations
# ---------------------------------------------------------------------------


def test_box_muller_values_and_distribution():
    u1 = torch.tensor([math.exp(-0.5), 1.0, math.exp(-2.0)], dtype=F64)
    u2 = torch.tensor([0.125, 0.3, 0.5], dtype=F64)
    z1, z2 = foundations.box_muller(u1, u2)
    close(z1, torch.tensor([math.cos(math.pi / 4), 0.0, -2.0], dtype=F64))
    close(z2, torch.tensor([math.sin(math.pi / 4), 0.0, 0.0], dtype=F64), atol=1e-12)

    n = 200_000
    u1 = 1.0 - torch.rand(n)  # (0, 1]
    u2 = torch.rand(n)
    z1, z2 = foundations.box_muller(u1, u2)
    assert z1.dtype == torch.float32 and z1.shape == (n,)
    for z in (z1, z2):
        assert abs(z.mean()) < 0.02 and abs(z.var() - 1) < 0.02
        assert abs((z ** 4).mean() - 3) < 0.1  # Gaussian kurtosis
    assert abs((z1 * z2).mean()) < 0.02
    assert abs((z1 ** 2 * z2 ** 2).mean() - 1) < 0.05  # independence, not just decorrelation


def test_gaussian_mle():
    x = torch.randn(500, 3, dtype=F64) @ torch.randn(3, 3, dtype=F64) + 4.0
    mean, cov = foundations.gaussian_mle(x)
    close(mean, x.mean(0))
    close(cov, torch.cov(x.T, correction=0))
    assert mean.shape == (3,) and cov.shape == (3, 3)


def test_diag_gaussian_log_prob_matches_distributions():
    x = torch.randn(4, 5, 3, dtype=F64)
    mean = torch.randn(5, 3, dtype=F64)
    log_var = torch.randn(4, 1, 3, dtype=F64)
    out = foundations.diag_gaussian_log_prob(x, mean, log_var)
    ref = D.Normal(mean, torch.exp(0.5 * log_var)).log_prob(x).sum(-1)
    assert out.shape == (4, 5)
    close(out, ref)
    mvn = D.MultivariateNormal(mean[0], torch.diag(torch.exp(log_var[0, 0])))
    close(foundations.diag_gaussian_log_prob(x[0, 0], mean[0], log_var[0, 0]), mvn.log_prob(x[0, 0]))


def test_diag_gaussian_log_prob_extremes_finite():
    x = torch.zeros(2, 3, requires_grad=True)
    mean = torch.full((2, 3), 1e3, requires_grad=True)
    log_var = torch.tensor([[-30.0] * 3, [30.0] * 3], requires_grad=True)
    out = foundations.diag_gaussian_log_prob(x, mean, log_var)
    out.sum().backward()
    assert out.dtype == torch.float32
    assert all_finite(out, x.grad, mean.grad, log_var.grad)


def _random_gmm(k=3, d=2, dtype=F64):
    log_weights = torch.log_softmax(torch.randn(k, dtype=dtype), 0)
    means = 3 * torch.randn(k, d, dtype=dtype)
    log_vars = 0.5 * torch.randn(k, d, dtype=dtype)
    return log_weights, means, log_vars


def test_gmm_log_likelihood_matches_mixture_same_family():
    log_weights, means, log_vars = _random_gmm()
    x = 3 * torch.randn(50, 2, dtype=F64)
    mix = D.MixtureSameFamily(
        D.Categorical(logits=log_weights),
        D.Independent(D.Normal(means, torch.exp(0.5 * log_vars)), 1),
    )
    out = foundations.gmm_log_likelihood(x, log_weights, means, log_vars)
    assert out.shape == (50,)
    close(out, mix.log_prob(x))


def test_gmm_log_likelihood_far_away_is_finite_and_accurate():
    log_weights, means, log_vars = _random_gmm()
    x = torch.full((4, 2), 1e3, dtype=F64)
    x[1] = -1e3
    ref = foundations.gmm_log_likelihood(x, log_weights, means, log_vars)
    x32 = x.float().requires_grad_(True)
    out = foundations.gmm_log_likelihood(x32, log_weights.float(), means.float(), log_vars.float())
    out.sum().backward()
    assert out.dtype == torch.float32 and all_finite(out, x32.grad)
    close(out.double(), ref, rtol=1e-4, atol=0)


def _em_brute_force(x, log_weights, means, log_vars):
    """EM with explicit probabilities and loops (fine for well-scaled data)."""
    n, k = x.shape[0], log_weights.shape[0]
    dens = torch.stack(
        [torch.exp(D.Independent(D.Normal(means[j], torch.exp(0.5 * log_vars[j])), 1).log_prob(x)) for j in range(k)],
        dim=1,
    ) * torch.exp(log_weights)
    resp = dens / dens.sum(1, keepdim=True)
    new_w, new_m, new_v = [], [], []
    for j in range(k):
        r = resp[:, j]
        nk = r.sum()
        mu = (r[:, None] * x).sum(0) / nk
        var = (r[:, None] * (x - mu) ** 2).sum(0) / nk
        new_w.append(nk / n)
        new_m.append(mu)
        new_v.append(var)
    return torch.log(torch.stack(new_w)), torch.stack(new_m), torch.log(torch.stack(new_v))


def test_gmm_em_step_matches_brute_force_and_increases_likelihood():
    log_weights, means, log_vars = _random_gmm()
    centres = torch.tensor([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]], dtype=F64)
    x = centres[torch.randint(0, 3, (300,))] + torch.randn(300, 2, dtype=F64)
    inputs = [t.clone() for t in (x, log_weights, means, log_vars)]
    out = foundations.gmm_em_step(x, log_weights, means, log_vars)
    ref = _em_brute_force(x, log_weights, means, log_vars)
    for a, b in zip(out, ref):
        close(a, b)
    for a, b in zip((x, log_weights, means, log_vars), inputs):
        assert torch.equal(a, b)  # inputs untouched
    close(torch.logsumexp(out[0], 0), torch.zeros((), dtype=F64))

    params = (log_weights, means, log_vars)
    previous = foundations.gmm_log_likelihood(x, *params).sum()
    for _ in range(10):
        params = foundations.gmm_em_step(x, *params)
        current = foundations.gmm_log_likelihood(x, *params).sum()
        assert current >= previous - 1e-9
        previous = current


# ---------------------------------------------------------------------------
# hw2 vae
# ---------------------------------------------------------------------------


def test_kl_normal_matches_distributions_with_broadcasting():
    qm, qlv = torch.randn(4, 1, 3, dtype=F64), torch.randn(4, 1, 3, dtype=F64)
    pm, plv = torch.randn(5, 3, dtype=F64), torch.randn(5, 3, dtype=F64)
    out = vae.kl_normal(qm, qlv, pm, plv)
    q = D.Independent(D.Normal(qm, torch.exp(0.5 * qlv)), 1)
    p = D.Independent(D.Normal(pm, torch.exp(0.5 * plv)), 1)
    assert out.shape == (4, 5)
    close(out, D.kl_divergence(q, p))
    close(vae.kl_normal(qm, qlv, qm, qlv), torch.zeros(4, 1, dtype=F64))


def test_kl_normal_monte_carlo():
    qm, qlv = torch.tensor([0.3, -1.0], dtype=F64), torch.tensor([0.2, -0.5], dtype=F64)
    pm, plv = torch.tensor([0.0, 0.5], dtype=F64), torch.tensor([0.0, 0.4], dtype=F64)
    z = qm + torch.exp(0.5 * qlv) * torch.randn(400_000, 2, dtype=F64)
    mc = (D.Normal(qm, torch.exp(0.5 * qlv)).log_prob(z) - D.Normal(pm, torch.exp(0.5 * plv)).log_prob(z)).sum(-1).mean()
    assert abs(vae.kl_normal(qm, qlv, pm, plv) - mc) < 0.01


def test_kl_normal_extremes_finite():
    vals = torch.tensor([-1e3, 1e3])
    lvs = torch.tensor([-30.0, 30.0])
    grid = torch.cartesian_prod(vals, lvs, vals, lvs)  # [16, 4]
    args = [grid[:, i:i + 1].clone().requires_grad_(True) for i in range(4)]
    out = vae.kl_normal(*args)
    out.sum().backward()
    assert out.dtype == torch.float32 and out.shape == (16,)
    assert all_finite(out, *(a.grad for a in args))
    assert bool((out >= -1e-3).all())


def test_sample_gaussian():
    mean = torch.randn(3, 2, dtype=F64, requires_grad=True)
    log_var = torch.randn(3, 2, dtype=F64, requires_grad=True)
    eps = torch.randn(3, 2, dtype=F64)
    z = vae.sample_gaussian(mean, log_var, eps)
    close(z, mean + torch.exp(0.5 * log_var) * eps)
    z.sum().backward()
    close(mean.grad, torch.ones_like(mean))
    close(log_var.grad, 0.5 * torch.exp(0.5 * log_var) * eps)

    m = torch.tensor([1.0, -2.0]).expand(100_000, 2)
    lv = torch.tensor([0.0, math.log(4.0)]).expand(100_000, 2)
    z = vae.sample_gaussian(m, lv)
    assert z.dtype == torch.float32 and z.shape == (100_000, 2)
    close(z.mean(0), torch.tensor([1.0, -2.0]), rtol=0, atol=0.03)
    close(z.std(0), torch.tensor([1.0, 2.0]), rtol=0, atol=0.03)


def test_log_bernoulli_with_logits():
    logits = 3 * torch.randn(6, 4, dtype=F64)
    x = torch.randint(0, 2, (6, 4)).to(F64)
    out = vae.log_bernoulli_with_logits(x, logits)
    assert out.shape == (6,)
    close(out, D.Bernoulli(logits=logits).log_prob(x).sum(-1))
    xf = torch.rand(6, 4, dtype=F64)  # fractional targets
    p = torch.sigmoid(logits)
    close(vae.log_bernoulli_with_logits(xf, logits), (xf * torch.log(p) + (1 - xf) * torch.log1p(-p)).sum(-1))
    # broadcasting over leading dims, as used by the IWAE bound
    close(vae.log_bernoulli_with_logits(x, logits.expand(2, 6, 4)), out.expand(2, 6))


def test_log_bernoulli_with_logits_extremes():
    logits = torch.tensor([[100.0, -100.0, 100.0, -100.0]], requires_grad=True)
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    out = vae.log_bernoulli_with_logits(x, logits)
    out.sum().backward()
    assert all_finite(out, logits.grad)
    close(out, torch.tensor([-200.0]), rtol=1e-5, atol=1e-3)
    close(logits.grad, torch.tensor([[0.0, 0.0, -1.0, 1.0]]), rtol=0, atol=1e-6)


def test_log_mean_exp():
    x = torch.randn(3, 7, 2, dtype=F64)
    close(vae.log_mean_exp(x, 1), torch.log(torch.exp(x).mean(1)))
    assert vae.log_mean_exp(x, 1).shape == (3, 2)
    big = torch.tensor([[1000.0, 1000.0], [-1000.0, -1000.0 + math.log(3.0)]], requires_grad=True)
    out = vae.log_mean_exp(big, -1)
    out.sum().backward()
    assert all_finite(out, big.grad)
    close(out, torch.tensor([1000.0, -1000.0 + math.log(2.0)]), rtol=1e-6, atol=1e-3)


class _ToyVAE(nn.Module):
    """Small encoder/decoder whose decode accepts any leading dims."""

    def __init__(self, d=4, z=2, const_decoder=False, prior_encoder=False):
        super().__init__()
        self.enc = nn.Linear(d, 2 * z)
        self.dec = nn.Linear(z, d)
        self.const_decoder, self.prior_encoder = const_decoder, prior_encoder

    def encode(self, x):
        m, lv = self.enc(x).chunk(2, -1)
        if self.prior_encoder:
            return 0 * m, 0 * lv
        return m, lv - 1.0

    def decode(self, z):
        if self.const_decoder:
            return self.dec(torch.zeros_like(z))
        return self.dec(z)


def _log_weights_independent(model, x, n):
    """n importance log-weights per example with torch.distributions: [n, B]."""
    m, lv = model.encode(x)
    q = D.Independent(D.Normal(m, torch.exp(0.5 * lv)), 1)
    z = q.sample((n,))
    prior = D.Independent(D.Normal(torch.zeros_like(m), torch.ones_like(m)), 1)
    lik = D.Independent(D.Bernoulli(logits=model.decode(z)), 1)
    return lik.log_prob(x) + prior.log_prob(z) - q.log_prob(z)


def test_negative_elbo_bound_deterministic_parts():
    model = _ToyVAE(const_decoder=True).double()
    x = torch.randint(0, 2, (8, 4)).to(F64)
    nelbo, kl, rec = vae.negative_elbo_bound(model, x)
    assert nelbo.shape == kl.shape == rec.shape == ()
    m, lv = model.encode(x)
    q = D.Independent(D.Normal(m, torch.exp(0.5 * lv)), 1)
    p = D.Independent(D.Normal(torch.zeros_like(m), torch.ones_like(m)), 1)
    close(kl, D.kl_divergence(q, p).mean())
    logits = model.decode(torch.zeros(8, 2, dtype=F64))
    close(rec, -D.Bernoulli(logits=logits).log_prob(x).sum(-1).mean())
    close(nelbo, kl + rec)
    nelbo.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_negative_elbo_bound_expectation():
    model = _ToyVAE().double()
    x = torch.randint(0, 2, (1, 4)).to(F64).expand(20_000, 4)
    with torch.no_grad():
        nelbo, kl, rec = vae.negative_elbo_bound(model, x)
        ref = -_log_weights_independent(model, x[:1], 20_000).mean()
    close(nelbo, kl + rec)
    assert abs(nelbo - ref) < 0.05


@pytest.mark.parametrize("k", [1, 10])
def test_negative_iwae_bound_expectation(k):
    model = _ToyVAE().double()
    b = 4000
    x = torch.randint(0, 2, (1, 4)).to(F64).expand(b, 4)
    with torch.no_grad():
        niwae = vae.negative_iwae_bound(model, x, k)
        lw = _log_weights_independent(model, x, k)  # [k, b]
        ref = -(torch.logsumexp(lw, 0) - math.log(k)).mean()
    assert niwae.shape == ()
    assert abs(niwae - ref) < 0.08


def test_negative_iwae_bound_exact_cases_and_ordering():
    # q(z|x) = p(z) and p(x|z) = p(x): every weight equals p(x) exactly.
    model = _ToyVAE(const_decoder=True, prior_encoder=True).double()
    x = torch.randint(0, 2, (5, 4)).to(F64)
    log_px = D.Bernoulli(logits=model.decode(torch.zeros(2, dtype=F64))).log_prob(x).sum(-1)
    close(vae.negative_iwae_bound(model, x, 7), -log_px.mean())
    close(vae.negative_elbo_bound(model, x)[0], -log_px.mean())

    # The bound tightens towards -log p(x) (1-d latent: quadrature). The
    # proposal is the prior, so the weights p(x|z) are bounded.
    torch.manual_seed(1)
    model = _ToyVAE(z=1, prior_encoder=True).double()
    x1 = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=F64)
    z = torch.linspace(-12, 12, 20_001, dtype=F64)[:, None]
    log_joint = D.Bernoulli(logits=model.decode(z)).log_prob(x1).sum(-1) + D.Normal(0.0, 1.0).log_prob(z[:, 0])
    log_px = torch.logsumexp(log_joint, 0) + math.log(z[1, 0] - z[0, 0])
    xb = x1.expand(500, 4)
    with torch.no_grad():
        n1 = vae.negative_iwae_bound(model, xb, 1)
        n100 = vae.negative_iwae_bound(model, xb, 100)
        n1000 = vae.negative_iwae_bound(model, x1, 1000)
    assert n1 > n100 > -log_px - 1e-3
    assert abs(n1000 - (-log_px)) < 0.02
    niwae = vae.negative_iwae_bound(model, xb[:8], 5)
    niwae.backward()
    assert all(p.grad is not None and all_finite(p.grad) for p in model.parameters())


def test_vae_float32_and_inputs_untouched():
    model = _ToyVAE()
    x = torch.rand(6, 4)
    x0 = x.clone()
    nelbo, kl, rec = vae.negative_elbo_bound(model, x)
    niwae = vae.negative_iwae_bound(model, x, 3)
    assert {t.dtype for t in (nelbo, kl, rec, niwae)} == {torch.float32}
    assert torch.equal(x, x0)


# ---------------------------------------------------------------------------
# hw3 flows
# ---------------------------------------------------------------------------


def _made_net(masks):
    layers = []
    for i, m in enumerate(masks):
        lin = nn.Linear(m.shape[1], m.shape[0]).double()
        with torch.no_grad():
            lin.weight.mul_(m.to(F64))
            lin.weight.add_(0.1 * m.to(F64))  # no accidental zero weights
        layers.append(lin)
        if i < len(masks) - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("hidden", [[], [3], [5, 7], [4, 4, 4]])
def test_made_masks_autoregressive(hidden):
    d = 5
    for order in (None, torch.randperm(d), [4, 2, 0, 1, 3]):
        masks = flows.made_masks(d, hidden, order)
        sizes = [d] + hidden + [d]
        assert len(masks) == len(hidden) + 1
        for m, n_in, n_out in zip(masks, sizes[:-1], sizes[1:]):
            assert m.shape == (n_out, n_in) and m.dtype == torch.get_default_dtype()
            assert bool(((m == 0) | (m == 1)).all())
        ordv = torch.arange(d) if order is None else torch.as_tensor(order)
        allowed = ordv[None, :] < ordv[:, None]  # [i, j]: order[j] < order[i]
        prod = masks[0]
        for m in masks[1:]:
            prod = m @ prod
        assert not bool(((prod > 0) & ~allowed).any())
        if all(h >= d - 1 for h in hidden):
            assert bool(((prod > 0) == allowed).all())
        # actual network Jacobian has the same pattern
        jac = torch.autograd.functional.jacobian(_made_net(masks), torch.randn(d, dtype=F64))
        assert not bool(((jac.abs() > 0) & ~allowed).any())
        if all(h >= d - 1 for h in hidden):
            assert bool(((jac.abs() > 0) == allowed).all())


def test_made_masks_single_input():
    masks = flows.made_masks(1, [3, 2])
    assert [tuple(m.shape) for m in masks] == [(3, 1), (2, 3), (1, 2)]
    assert float(masks[-1].sum()) == 0.0
    assert flows.made_masks(1, [])[0].shape == (1, 1)


def test_pixelcnn_mask():
    a = flows.pixelcnn_mask(4, 3, 5, "A")
    b = flows.pixelcnn_mask(4, 3, 5, "B")
    assert a.shape == b.shape == (4, 3, 5, 5)
    expected = torch.zeros(5, 5)
    for r in range(5):
        for c in range(5):
            expected[r, c] = float(r * 5 + c < 12)  # raster index of the centre is 12
    assert torch.equal(a, expected.expand(4, 3, 5, 5))
    expected[2, 2] = 1.0
    assert torch.equal(b, expected.expand(4, 3, 5, 5))
    assert torch.equal(flows.pixelcnn_mask(1, 1, 1, "A"), torch.zeros(1, 1, 1, 1))

    # causality of a masked conv stack (A then B): output at p sees only inputs before p
    conv1, conv2 = nn.Conv2d(1, 2, 3, padding=1).double(), nn.Conv2d(2, 1, 3, padding=1).double()
    m1, m2 = flows.pixelcnn_mask(2, 1, 3, "A").double(), flows.pixelcnn_mask(1, 2, 3, "B").double()
    net = lambda img: Fn.conv2d(torch.relu(Fn.conv2d(img, conv1.weight * m1, padding=1)), conv2.weight * m2, padding=1)  # noqa: E731
    jac = torch.autograd.functional.jacobian(net, torch.randn(1, 1, 4, 4, dtype=F64)).reshape(16, 16)
    assert not bool(torch.triu(jac).abs().gt(0).any())


class _Cond(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 2 * d))

    def forward(self, x):
        return 3 * self.net(x)


def _coupling(d=4, dtype=F64):
    mask = (torch.arange(d) % 2).to(dtype)
    return flows.AffineCoupling(mask, _Cond(d).to(dtype)), mask


def test_affine_coupling_forward_inverse_and_log_det():
    layer, mask = _coupling()
    x = torch.randn(6, 4, dtype=F64)
    y, log_det = layer(x)
    assert y.shape == x.shape and log_det.shape == (6,)
    close(y * mask, x * mask)
    s, t = layer.net(x * mask).chunk(2, -1)
    close(y, mask * x + (1 - mask) * (x * torch.exp(torch.tanh(s)) + t))
    close(layer.inverse(y), x)
    close(layer(layer.inverse(x))[0], x)
    for b in range(6):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x[b])
        close(log_det[b], torch.linalg.slogdet(jac)[1])


def test_affine_coupling_float32():
    layer, _ = _coupling(dtype=torch.float32)
    x = torch.randn(3, 4)
    y, log_det = layer(x)
    assert y.dtype == log_det.dtype == torch.float32
    close(layer.inverse(y), x, rtol=1e-5, atol=1e-5)


class _LinearFlow(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return x @ self.a.T + self.b, torch.linalg.slogdet(self.a)[1].expand(x.shape[0])


def test_flow_log_prob():
    x = torch.randn(10, 3, dtype=F64)
    close(flows.flow_log_prob([], x), D.MultivariateNormal(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64)).log_prob(x))
    a = torch.randn(3, 3, dtype=F64) + 2 * torch.eye(3, dtype=F64)
    b = torch.randn(3, dtype=F64)
    # z = A x + b ~ N(0, I)  <=>  x ~ N(-A^{-1} b, (A^T A)^{-1})
    ainv = torch.linalg.inv(a)
    mvn = D.MultivariateNormal(-ainv @ b, ainv @ ainv.T)
    close(flows.flow_log_prob([_LinearFlow(a, b)], x), mvn.log_prob(x))

    # stacked couplings: brute-force change of variables with the full Jacobian
    l1, _ = _coupling(3)
    l2 = flows.AffineCoupling(1 - l1.mask, _Cond(3).double())
    layers = [l1, _LinearFlow(a, b), l2]

    def f(v):
        for layer in layers:
            v = layer(v[None])[0][0]
        return v

    out = flows.flow_log_prob(layers, x)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(f, x[i])
        ref = D.Normal(0.0, 1.0).log_prob(f(x[i])).sum() + torch.linalg.slogdet(jac)[1]
        close(out[i], ref)


# ---------------------------------------------------------------------------
# hw4 gan
# ---------------------------------------------------------------------------


def test_gan_losses_values():
    r, f = torch.randn(7, dtype=F64), torch.randn(9, dtype=F64)
    sig = torch.sigmoid
    close(gan.d_loss_minimax(r, f), -torch.log(sig(r)).mean() - torch.log(1 - sig(f)).mean())
    close(gan.g_loss_minimax(f), torch.log(1 - sig(f)).mean())
    close(gan.g_loss_nonsaturating(f), -torch.log(sig(f)).mean())
    close(gan.d_loss_lsgan(r, f), 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean())
    close(gan.g_loss_lsgan(f), 0.5 * ((f - 1) ** 2).mean())
    close(gan.d_loss_wgan(r, f), f.mean() - r.mean())
    close(gan.g_loss_wgan(f), -f.mean())
    # [B, 1] inputs work as well
    close(gan.d_loss_minimax(r[:, None], f[:, None]), gan.d_loss_minimax(r, f))


@pytest.mark.parametrize("fn,n_args", [
    (gan.d_loss_minimax, 2), (gan.g_loss_minimax, 1), (gan.g_loss_nonsaturating, 1),
    (gan.d_loss_lsgan, 2), (gan.g_loss_lsgan, 1), (gan.d_loss_wgan, 2), (gan.g_loss_wgan, 1),
])
def test_gan_losses_extremes(fn, n_args):
    args = [torch.tensor([100.0, -100.0, 0.0], requires_grad=True) for _ in range(n_args)]
    out = fn(*args)
    out.backward()
    assert out.shape == () and out.dtype == torch.float32
    assert all_finite(out, *(a.grad for a in args))


def test_minimax_extreme_values():
    big = torch.tensor([100.0])
    close(gan.d_loss_minimax(big, -big), torch.tensor(0.0), atol=1e-6, rtol=0)
    close(gan.d_loss_minimax(-big, big), torch.tensor(200.0), atol=1e-3, rtol=1e-5)
    close(gan.g_loss_nonsaturating(-big), torch.tensor(100.0), atol=1e-3, rtol=1e-5)
    close(gan.g_loss_minimax(big), torch.tensor(-100.0), atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("out_shape", ["flat", "column"])
def test_gradient_penalty_linear_critic(out_shape):
    w = torch.randn(3 * 2 * 2, dtype=F64, requires_grad=True)

    def critic(x):
        out = x.flatten(1) @ w
        return out if out_shape == "flat" else out[:, None]

    real, fake = torch.randn(5, 3, 2, 2, dtype=F64), torch.randn(5, 3, 2, 2, dtype=F64)
    alpha = torch.rand(5, dtype=F64)
    gp = gan.gradient_penalty(critic, real, fake, alpha)
    norm = w.detach().norm()
    close(gp, (norm - 1) ** 2)
    gp.backward()
    close(w.grad, 2 * (norm - 1) * w.detach() / norm)
    assert not real.requires_grad and not fake.requires_grad


def test_gradient_penalty_nonlinear_critic_and_alpha_broadcast():
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    real, fake = torch.randn(6, 4, dtype=F64), torch.randn(6, 4, dtype=F64)
    alpha = torch.rand(6, dtype=F64)
    gp = gan.gradient_penalty(net, real, fake, alpha)
    x_hat = alpha[:, None] * real + (1 - alpha[:, None]) * fake
    norms = torch.stack([torch.autograd.functional.jacobian(lambda v: net(v).sum(), x_hat[b]).norm() for b in range(6)])
    close(gp, ((norms - 1) ** 2).mean())
    gp.backward()
    # the last bias does not change the input gradient, so it gets no gradient
    assert all(p.grad is not None and all_finite(p.grad) for p in (net[0].weight, net[0].bias, net[2].weight))

    quad = lambda x: 0.5 * (x ** 2).flatten(1).sum(1)  # noqa: E731  gradient = x_hat
    r, f = torch.randn(4, 2, 3, dtype=F64), torch.randn(4, 2, 3, dtype=F64)
    a = torch.rand(4, dtype=F64)
    xh = a[:, None, None] * r + (1 - a[:, None, None]) * f
    close(gan.gradient_penalty(quad, r, f, a), ((xh.flatten(1).norm(dim=1) - 1) ** 2).mean())


def test_gradient_penalty_float32():
    lin = nn.Linear(3, 1)
    gp = gan.gradient_penalty(lin, torch.randn(4, 3), torch.randn(4, 3), torch.rand(4))
    assert gp.dtype == torch.float32 and gp.shape == ()


def test_cycle_consistency_loss():
    x, y = torch.randn(4, 3, dtype=F64), torch.randn(5, 3, dtype=F64)
    G = lambda v: 2 * v  # noqa: E731
    F_ = lambda v: v + 1  # noqa: E731
    close(gan.cycle_consistency_loss(x, y, G, F_), (x + 1).abs().mean() + (y + 2).abs().mean())
    close(gan.cycle_consistency_loss(x, y, lambda v: v, lambda v: v), torch.zeros((), dtype=F64))


# ---------------------------------------------------------------------------
# hw5 diffusion
# ---------------------------------------------------------------------------


@pytest.fixture
def default_f64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    yield
    torch.set_default_dtype(old)


def test_linear_beta_schedule(default_f64):
    betas = diffusion.linear_beta_schedule(1000)
    assert betas.dtype == F64 and betas.shape == (1000,)
    close(betas[0], torch.tensor(1e-4))
    close(betas[-1], torch.tensor(0.02))
    close(betas, torch.tensor([1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]))
    close(diffusion.linear_beta_schedule(3, 0.1, 0.3), torch.tensor([0.1, 0.2, 0.3]))


def test_schedules_follow_default_dtype():
    assert diffusion.linear_beta_schedule(10).dtype == torch.float32
    assert diffusion.cosine_beta_schedule(10).dtype == torch.float32


def test_cosine_beta_schedule(default_f64):
    T, s = 50, 0.008
    f = lambda u: math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    expected = torch.tensor([min(1 - f(t + 1) / f(t), 0.999) for t in range(T)])
    betas = diffusion.cosine_beta_schedule(T)
    assert betas.dtype == F64 and betas.shape == (T,)
    close(betas, expected)
    assert betas[-1] == 0.999  # clipped
    alpha_bars = torch.cumprod(1 - betas, 0)
    close(alpha_bars[:-1], torch.tensor([f(t + 1) / f(0) for t in range(T - 1)]))
    close(diffusion.cosine_beta_schedule(T, max_beta=0.5), expected.clamp(max=0.5))
    b32 = diffusion.cosine_beta_schedule(1000).float()
    torch.set_default_dtype(torch.float32)
    close(diffusion.cosine_beta_schedule(1000), b32, rtol=1e-6, atol=0)


@pytest.fixture
def sched():
    betas = torch.linspace(1e-4, 0.2, 20, dtype=F64)
    return betas, torch.cumprod(1 - betas, 0)


def test_q_sample(sched):
    _, ab = sched
    x0, noise = torch.randn(4, 3, 2, 2, dtype=F64), torch.randn(4, 3, 2, 2, dtype=F64)
    t = torch.tensor([0, 5, 19, 7])
    out = diffusion.q_sample(x0, t, noise, ab)
    for b in range(4):
        close(out[b], ab[t[b]].sqrt() * x0[b] + (1 - ab[t[b]]).sqrt() * noise[b])
    # distribution of x_t given x0 (via torch.randn noise)
    x0v = torch.full((50_000, 1), 2.0, dtype=F64)
    tt = torch.full((50_000,), 10)
    xs = diffusion.q_sample(x0v, tt, torch.randn_like(x0v), ab)
    assert abs(xs.mean() - 2 * ab[10].sqrt()) < 0.02 and abs(xs.var() - (1 - ab[10])) < 0.02


def test_q_posterior_mean_variance_is_gaussian_conditioning(sched):
    betas, ab = sched
    x0, xt = torch.randn(5, 2, 3, dtype=F64), torch.randn(5, 2, 3, dtype=F64)
    t = torch.tensor([1, 2, 10, 19, 0])
    mean, var = diffusion.q_posterior_mean_variance(x0, xt, t, betas)
    assert mean.shape == xt.shape and torch.broadcast_shapes(var.shape, xt.shape) == xt.shape
    var = var.expand_as(xt)
    for b in range(4):
        s = int(t[b])
        # prior x_{s-1} | x0 ~ N(sqrt(ab[s-1]) x0, 1 - ab[s-1]); likelihood x_s | x_{s-1} ~ N(sqrt(1-beta_s) x_{s-1}, beta_s)
        prior_var = 1 - ab[s - 1]
        post_var = 1 / (1 / prior_var + (1 - betas[s]) / betas[s])
        post_mean = post_var * (ab[s - 1].sqrt() * x0[b] / prior_var + (1 - betas[s]).sqrt() * xt[b] / betas[s])
        close(mean[b], post_mean)
        close(var[b], post_var.expand_as(xt[b]))
    assert torch.equal(mean[4], x0[4]) and bool((var[4] == 0).all())


def test_q_posterior_t0_no_nan_even_if_beta0_is_zero():
    betas = torch.tensor([0.0, 0.1, 0.2], dtype=F64)
    x0, xt = torch.randn(2, 3, dtype=F64), torch.randn(2, 3, dtype=F64)
    mean, var = diffusion.q_posterior_mean_variance(x0, xt, torch.tensor([0, 2]), betas)
    assert all_finite(mean, var) and torch.equal(mean[0], x0[0])


def test_predict_x0_inverts_q_sample(sched):
    _, ab = sched
    x0, noise = torch.randn(3, 5, dtype=F64), torch.randn(3, 5, dtype=F64)
    t = torch.tensor([0, 9, 19])
    close(diffusion.predict_x0_from_noise(diffusion.q_sample(x0, t, noise, ab), t, noise, ab), x0)


def test_noise_prediction_loss(sched):
    _, ab = sched
    x0, noise = torch.randn(4, 2, 3, dtype=F64), torch.randn(4, 2, 3, dtype=F64)
    t = torch.tensor([0, 3, 9, 19])
    zero = lambda x, tt: torch.zeros_like(x)  # noqa: E731
    close(diffusion.noise_prediction_loss(zero, x0, t, noise, ab), (noise ** 2).mean())
    oracle = lambda x, tt: (x - ab[tt].sqrt().reshape(-1, 1, 1) * x0) / (1 - ab[tt]).sqrt().reshape(-1, 1, 1)  # noqa: E731
    close(diffusion.noise_prediction_loss(oracle, x0, t, noise, ab), torch.zeros((), dtype=F64))
    lin = nn.Linear(3, 3).double()
    loss = diffusion.noise_prediction_loss(lambda x, tt: lin(x), x0, t, noise, ab)
    loss.backward()
    assert loss.shape == () and lin.weight.grad is not None


def test_p_sample_step(sched):
    betas, ab = sched
    xt, noise = torch.randn(3, 2, 2, dtype=F64), torch.randn(3, 2, 2, dtype=F64)
    t = torch.tensor([0, 4, 19])
    eps_model = lambda x, tt: torch.tanh(x) + tt.reshape(-1, 1, 1) / 10  # noqa: E731
    out = diffusion.p_sample_step(eps_model, xt, t, betas, noise)
    x0_hat = diffusion.predict_x0_from_noise(xt, t, eps_model(xt, t), ab)
    mean, var = diffusion.q_posterior_mean_variance(x0_hat, xt, t, betas)
    close(out, mean + var.sqrt() * noise)
    # Algorithm 2 of Ho et al.: mean = (x_t - beta/sqrt(1-ab) eps)/sqrt(alpha)
    eps = eps_model(xt, t)
    shp = (-1, 1, 1)
    alg2 = (xt - (betas[t] / (1 - ab[t]).sqrt()).reshape(shp) * eps) / (1 - betas[t]).sqrt().reshape(shp)
    close(out[0], alg2[0])  # no noise at t == 0
    close(diffusion.p_sample_step(eps_model, xt, t, betas, 100 * noise)[0], alg2[0])


def test_ddim_step_eta0_recovers_trajectory(sched):
    _, ab = sched
    x0, eps = torch.randn(4, 3, 2, dtype=F64), torch.randn(4, 3, 2, dtype=F64)
    t = torch.tensor([19, 10, 5, 3])
    t_prev = torch.tensor([12, -1, 0, 2])
    xt = diffusion.q_sample(x0, t, eps, ab)
    oracle = lambda x, tt: eps  # noqa: E731
    out = diffusion.ddim_step(oracle, xt, t, t_prev, ab, 0.0, torch.randn_like(x0))
    close(out[1], x0[1])
    for b in (0, 2, 3):
        close(out[b], diffusion.q_sample(x0[b:b + 1], t_prev[b:b + 1], eps[b:b + 1], ab)[0])


def test_ddim_step_eta1_matches_ddpm_variance(sched):
    betas, ab = sched
    xt = torch.randn(3, 4, dtype=F64)
    t, t_prev = torch.tensor([19, 5, 1]), torch.tensor([18, 4, 0])
    model = lambda x, tt: 0.5 * x  # noqa: E731
    noise = torch.randn(3, 4, dtype=F64)
    base = diffusion.ddim_step(model, xt, t, t_prev, ab, 1.0, torch.zeros_like(xt))
    sigma_times_noise = diffusion.ddim_step(model, xt, t, t_prev, ab, 1.0, noise) - base
    _, post_var = diffusion.q_posterior_mean_variance(xt, xt, t, betas)
    close(sigma_times_noise, post_var.sqrt() * noise)
    # with eta = 1 the mean also equals the DDPM posterior mean
    ddpm = diffusion.p_sample_step(model, xt, t, betas, noise)
    close(base + sigma_times_noise, ddpm)
    # t_prev = -1 with eta = 1: sigma = 0
    out = diffusion.ddim_step(model, xt, t, torch.tensor([-1, -1, -1]), ab, 1.0, noise)
    close(out, diffusion.predict_x0_from_noise(xt, t, model(xt, t), ab))


def test_classifier_free_guidance():
    c, u = torch.randn(3, 2, 4, dtype=F64), torch.randn(3, 2, 4, dtype=F64)
    close(diffusion.classifier_free_guidance(c, u, 1.0), c)
    close(diffusion.classifier_free_guidance(c, u, 0.0), u)
    close(diffusion.classifier_free_guidance(c, u, 3.0), u + 3 * (c - u))
    w = torch.tensor([0.0, 1.0, 7.5], dtype=F64)
    out = diffusion.classifier_free_guidance(c, u, w)
    for b in range(3):
        close(out[b], u[b] + w[b] * (c[b] - u[b]))
    assert diffusion.classifier_free_guidance(c.float(), u.float(), w).dtype == torch.float32


def _quantile_linear(values, q):
    v = torch.sort(values).values
    pos = q * (v.numel() - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def test_dynamic_threshold():
    x = torch.randn(4, 3, 5, 5, dtype=F64) * torch.tensor([0.1, 1.0, 3.0, 10.0], dtype=F64).reshape(4, 1, 1, 1)
    for p in (0.995, 0.9, 0.5):
        out = diffusion.dynamic_threshold(x, p)
        for b in range(4):
            s = max(1.0, float(_quantile_linear(x[b].abs().flatten(), p)))
            close(out[b], x[b].clamp(-s, s) / s)
    out = diffusion.dynamic_threshold(x)
    close(out[0], x[0])  # |x| < 1 everywhere: unchanged
    assert out.abs().max() <= 1.0


def test_inpaint_merge(sched):
    _, ab = sched
    x_prev, y, noise = (torch.randn(3, 1, 4, 4, dtype=F64) for _ in range(3))
    mask = (torch.rand(3, 1, 4, 4) > 0.5).to(F64)
    t_prev = torch.tensor([-1, 0, 12])
    out = diffusion.inpaint_merge(x_prev, y, mask, t_prev, ab, noise)
    known = mask == 1
    close(out[~known], x_prev[~known])
    close(out[0][known[0]], y[0][known[0]])
    for b in (1, 2):
        noised = ab[t_prev[b]].sqrt() * y[b] + (1 - ab[t_prev[b]]).sqrt() * noise[b]
        close(out[b][known[b]], noised[known[b]])


def test_diffusion_mixed_dtypes_float32_data(sched):
    betas, ab = sched  # float64 schedule
    x0, noise, xt = (torch.randn(2, 3, 4) for _ in range(3))
    t, t_prev = torch.tensor([3, 19]), torch.tensor([-1, 10])
    model = lambda x, tt: 0.5 * x  # noqa: E731
    outs = [
        diffusion.q_sample(x0, t, noise, ab),
        *diffusion.q_posterior_mean_variance(x0, xt, t, betas),
        diffusion.predict_x0_from_noise(xt, t, noise, ab),
        diffusion.noise_prediction_loss(model, x0, t, noise, ab),
        diffusion.p_sample_step(model, xt, t, betas, noise),
        diffusion.ddim_step(model, xt, t, t_prev, ab, 0.5, noise),
        diffusion.inpaint_merge(xt, x0, (x0 > 0).float(), t_prev, ab, noise),
        diffusion.dynamic_threshold(3 * xt),
    ]
    for o in outs:
        assert o.dtype == torch.float32 and all_finite(o)
    close(outs[0].double(), diffusion.q_sample(x0.double(), t, noise.double(), ab), rtol=1e-5, atol=1e-6)


def test_diffusion_inputs_untouched(sched):
    betas, ab = sched
    xt, x0, noise = (torch.randn(2, 3, dtype=F64) for _ in range(3))
    copies = [v.clone() for v in (xt, x0, noise, betas, ab)]
    model = lambda x, tt: x  # noqa: E731
    diffusion.p_sample_step(model, xt, torch.tensor([0, 4]), betas, noise)
    diffusion.ddim_step(model, xt, torch.tensor([4, 4]), torch.tensor([-1, 2]), ab, 1.0, noise)
    diffusion.inpaint_merge(xt, x0, torch.ones_like(x0), torch.tensor([-1, 3]), ab, noise)
    diffusion.dynamic_threshold(5 * xt)
    for v, c in zip((xt, x0, noise, betas, ab), copies):
        assert torch.equal(v, c)


# ---------------------------------------------------------------------------
# hw6 score
# ---------------------------------------------------------------------------


def test_dsm_loss():
    x, noise = torch.randn(5, 3, dtype=F64), torch.randn(5, 3, dtype=F64)
    a = torch.randn(3, 3, dtype=F64, requires_grad=True)
    score_fn = lambda v, sig: v @ a  # noqa: E731
    sigma = 0.3
    out = score.dsm_loss(score_fn, x, sigma, noise)
    xt = x + sigma * noise
    close(out, 0.5 * ((xt @ a + noise / sigma) ** 2).sum(1).mean())
    out.backward()
    assert a.grad is not None
    # per-example sigma on images, passed through to score_fn unchanged
    xi, ni = torch.randn(4, 2, 3, 3, dtype=F64), torch.randn(4, 2, 3, 3, dtype=F64)
    sig = torch.tensor([0.01, 0.1, 1.0, 5.0], dtype=F64)
    seen = []

    def img_score(v, s):
        seen.append(s)
        return -v / (1 + s.reshape(-1, 1, 1, 1) ** 2)

    out = score.dsm_loss(img_score, xi, sig, ni)
    assert seen[0] is sig
    s4 = sig.reshape(-1, 1, 1, 1)
    xt = xi + s4 * ni
    close(out, 0.5 * ((-xt / (1 + s4 ** 2) + ni / s4) ** 2).flatten(1).sum(1).mean())


def test_dsm_optimal_score_has_lower_loss():
    x = torch.randn(100_000, 2, dtype=F64)  # data N(0, I); perturbed N(0, (1 + s^2) I)
    noise = torch.randn_like(x)
    s = 0.5
    true = score.dsm_loss(lambda v, _: -v / (1 + s ** 2), x, s, noise)
    for c in (0.5, 1.0, 1.5):
        assert score.dsm_loss(lambda v, _: -c * v, x, s, noise) > true


def test_sliced_score_matching_linear_score():
    a = torch.randn(3, 3, dtype=F64, requires_grad=True)
    x, v = torch.randn(6, 3, dtype=F64), torch.randn(6, 3, dtype=F64)
    out = score.sliced_score_matching_loss(lambda z, _: z @ a.T, x, v)  # s(x) = A x, grad_x(v.Ax) = A^T v
    ref = ((v @ a) * v).sum(1) + 0.5 * ((v * (x @ a.T)).sum(1)) ** 2
    close(out, ref.mean())
    (g,) = torch.autograd.grad(out, a)
    (g_ref,) = torch.autograd.grad(ref.mean(), a)
    close(g, g_ref)
    assert not x.requires_grad  # caller's tensor untouched


def test_sliced_score_matching_nonlinear_and_x_requiring_grad():
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    x, v = torch.randn(4, 2, dtype=F64), torch.randn(4, 2, dtype=F64)
    out = score.sliced_score_matching_loss(lambda z, _: net(z), x, v)
    terms = []
    for b in range(4):
        jac = torch.autograd.functional.jacobian(net, x[b])
        terms.append(v[b] @ jac @ v[b] + 0.5 * (v[b] @ net(x[b])) ** 2)
    close(out, torch.stack(terms).mean())
    out.backward()
    assert all(p.grad is not None for p in net.parameters())
    xg = x.clone().requires_grad_(True)
    close(score.sliced_score_matching_loss(lambda z, _: net(z), xg, v), out.detach())


def test_langevin_step():
    x, noise = torch.randn(3, 2, dtype=F64), torch.randn(3, 2, dtype=F64)
    close(score.langevin_step(lambda v, s: -v * s, x, 0.01, noise, 2.0), x - 0.02 * x + math.sqrt(0.02) * noise)
    close(score.langevin_step(lambda v, s: -v, x, 0.1, noise), 0.9 * x + math.sqrt(0.2) * noise)


def test_vp_sde_marginal_against_numerical_integral():
    x0 = torch.randn(4, 3, 2, dtype=F64)
    t = torch.tensor([1e-3, 0.1, 0.5, 1.0], dtype=F64)
    mean, std = score.vp_sde_marginal(x0, t)
    assert mean.shape == x0.shape and torch.broadcast_shapes(std.shape, x0.shape) == x0.shape
    for b in range(4):
        grid = torch.linspace(0, float(t[b]), 2001, dtype=F64)
        integral = torch.trapezoid(0.1 + grid * (20.0 - 0.1), grid)
        coeff = torch.exp(-0.5 * integral)
        close(mean[b], coeff * x0[b], rtol=1e-8, atol=1e-10)
        close(std.expand_as(x0)[b], torch.sqrt(1 - coeff ** 2).expand_as(x0[b]), rtol=1e-7, atol=1e-10)
    m32, s32 = score.vp_sde_marginal(x0.float(), t.float())
    assert m32.dtype == s32.dtype == torch.float32
    close(s32.double(), std, rtol=1e-4, atol=0)
    _, s_mixed = score.vp_sde_marginal(x0.float(), t)
    assert s_mixed.dtype == torch.float32


def test_reverse_sde_step_and_probability_flow():
    x, noise = torch.randn(3, 2, 2, dtype=F64), torch.randn(3, 2, 2, dtype=F64)
    t = torch.tensor([0.1, 0.5, 1.0], dtype=F64)
    beta = (0.1 + t * 19.9).reshape(-1, 1, 1)
    sfn = lambda v, tt: torch.sin(v) * tt.reshape(-1, 1, 1)  # noqa: E731
    dt = 0.01
    out = score.reverse_sde_step(sfn, x, t, dt, noise)
    s = sfn(x, t)
    close(out, x - (-0.5 * beta * x - beta * s) * dt + torch.sqrt(beta * dt) * noise)
    close(score.probability_flow_drift(sfn, x, t), -0.5 * beta * x - 0.5 * beta * s)
    # N(0, I) is stationary for the VP-SDE: its score is -x and the ODE drift vanishes
    close(score.probability_flow_drift(lambda v, tt: -v, x, t), torch.zeros_like(x))
    out = score.reverse_sde_step(lambda v, tt: -v, x, t, dt, noise, beta_min=1.0, beta_max=3.0)
    b2 = (1.0 + 2.0 * t).reshape(-1, 1, 1)
    close(out, x - 0.5 * b2 * x * dt + torch.sqrt(b2 * dt) * noise)


def test_contrastive_divergence_loss():
    w = torch.randn(3, dtype=F64, requires_grad=True)
    energy = lambda v: (v ** 2) @ w  # noqa: E731
    x_pos = torch.randn(5, 3, dtype=F64)
    x_neg = torch.randn(7, 3, dtype=F64, requires_grad=True)
    loss = score.contrastive_divergence_loss(energy, x_pos, x_neg)
    close(loss, energy(x_pos).mean() - energy(x_neg).mean())
    loss.backward()
    close(w.grad, (x_pos ** 2).mean(0) - (x_neg.detach() ** 2).mean(0))
    assert x_neg.grad is None


def test_score_float32_dtypes():
    x, noise = torch.randn(4, 3), torch.randn(4, 3)
    t = torch.rand(4, dtype=F64) * 0.9 + 0.1
    sfn = lambda v, s: -v  # noqa: E731
    outs = [
        score.dsm_loss(sfn, x, torch.full((4,), 0.5, dtype=F64), noise),
        score.sliced_score_matching_loss(sfn, x, noise),
        score.langevin_step(sfn, x, 0.01, noise),
        score.vp_sde_marginal(x, t)[0],
        score.reverse_sde_step(sfn, x, t, 0.01, noise),
        score.probability_flow_drift(sfn, x, t),
    ]
    for o in outs:
        assert o.dtype == torch.float32 and all_finite(o)
