"""Hidden-only helpers for hw5's checks: the values of graded functions, derived by another route.

Imported by checks_hidden.py only, never by checks_public.py or models.py, so the student
bundle (grader/deploy/student.py ships checks_public.py and what it imports) leaves this
file out; the Gradescope autograder and the TA wheel carry it with the hidden checks.
Each helper computes what a graded function returns, so none may be public:

* ``chain_marginal`` / ``chain_sample``: q(x_t | x0) by running the recursion of the forward
  Markov chain (Ho et al. 2020, eq. 2), not the closed form of eq. 4: q_sample's value;
* ``posterior_by_conditioning``: q(x_{t-1} | x_t, x0) by conditioning the joint Gaussian of
  (x_{t-1}, x_t) given x0, not eq. 7: q_posterior_mean_variance's value;
* ``ancestral_chain_moments``: the exact mean and variance of a DDPM ancestral chain for Gaussian
  data and its exact noise predictor (``gaussian_eps_coefficients``, ``gaussian_x0_given_xt``),
  propagated through the posterior: what p_sample_step's chain must reach.
"""
from __future__ import annotations

import torch

from .models import F64, ab_at, alpha_bars_of, per_example


def chain_marginal(betas: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, s) [B], float64: x_t = k x0 + s * (standard normal) under the forward chain run to step t.

    Runs the recursion of the forward Markov chain (Ho et al. 2020, eq. 2),
    x_u = sqrt(1 - betas[u]) x_{u-1} + sqrt(betas[u]) z_u for u = 0 .. t from x_{-1} = x0:
    the coefficient of x0 is k_u = sqrt(1 - betas[u]) k_{u-1} and the accumulated noise has
    variance v_u = (1 - betas[u]) v_{u-1} + betas[u], from k = 1, v = 0 (so t = -1 gives (1, 0)).
    This is the marginal q(x_t | x0) derived from the chain, not from the closed form of eq. 4.
    """
    betas = betas.double()
    k = torch.ones(t.shape, dtype=F64)
    v = torch.zeros(t.shape, dtype=F64)
    for u in range(int(t.max()) + 1 if t.numel() else 0):
        step = t >= u
        k = torch.where(step, (1 - betas[u]).sqrt() * k, k)
        v = torch.where(step, (1 - betas[u]) * v + betas[u], v)
    return k, v.sqrt()


def chain_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """k x0 + s noise with (k, s) = chain_marginal(betas, t): the forward chain's x_t for that noise (float64)."""
    k, s = chain_marginal(betas, t)
    return per_example(k, x0) * x0.double() + per_example(s, x0) * noise.double()


def posterior_by_conditioning(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                              betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(x_{t-1} | x_t, x0) from the joint Gaussian of (x_{t-1}, x_t) given x0, in float64.

    Given x0: x_{t-1} = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) z1 and
    x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z2, so per dim
    Var x_{t-1} = v = 1 - ab_prev, Cov = sqrt(alpha_t) v, Var x_t = alpha_t v + beta_t;
    conditioning gives mean = m_prev + Cov / Var_t (x_t - m_t), var = v - Cov^2 / Var_t.
    At t == 0 (ab_prev = 1) this is (x0, 0). Returns (mean [B, ...], var [B, ...]).
    """
    betas = betas.double()
    alpha_bars = alpha_bars_of(betas)
    beta_t = betas[t]
    ab_prev = ab_at(alpha_bars, t - 1)
    v = 1.0 - ab_prev
    cov = (1.0 - beta_t).sqrt() * v
    var_t = (1.0 - beta_t) * v + beta_t
    gain = per_example(cov / var_t, x_t)
    m_prev = per_example(ab_prev.sqrt(), x0) * x0.double()
    m_t = per_example((1.0 - beta_t).sqrt() * ab_prev.sqrt(), x0) * x0.double()
    mean = m_prev + gain * (x_t.double() - m_t)
    var = per_example(v - cov**2 / var_t, x_t).expand(x_t.shape)
    return mean, var


def gaussian_x0_given_xt(mu: torch.Tensor, var: torch.Tensor, ab: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
    """E[x0 | x_t] for data x0 ~ N(mu, diag var) and x_t = sqrt(ab) x0 + sqrt(1 - ab) eps (Gaussian conditioning).

    Cov(x0, x_t) = sqrt(ab) var and Var(x_t) = ab var + 1 - ab, so
    E[x0 | x_t] = mu + sqrt(ab) var (x_t - sqrt(ab) mu) / (ab var + 1 - ab). Arguments broadcast (float64).
    """
    mu, var, ab, x_t = mu.double(), var.double(), ab.double(), x_t.double()
    return mu + ab.sqrt() * var * (x_t - ab.sqrt() * mu) / (ab * var + 1 - ab)


def gaussian_eps_coefficients(mu: torch.Tensor, var: torch.Tensor,
                              alpha_bars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) [T, D] of the exact noise predictor for data x0 ~ N(mu, diag var).

    x_t = sqrt(ab) x0 + sqrt(1 - ab) eps is jointly Gaussian with eps, so
    E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab var + 1 - ab).
    """
    ab = alpha_bars.double()[:, None]
    scale = (1 - ab).sqrt() / (ab * var.double() + 1 - ab)
    return scale, -scale * ab.sqrt() * mu.double()


def ancestral_chain_moments(mu: torch.Tensor, var: torch.Tensor, betas: torch.Tensor,
                            mean0: torch.Tensor, var0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and variance after DDPM ancestral steps t = T-1 .. 0 from x ~ N(mean0, var0), for data
    x0 ~ N(mu, diag var) and its exact noise predictor (``gaussian_eps_coefficients``).

    With the exact predictor, the step's predicted x0 is E[x0 | x_t] (``gaussian_x0_given_xt``; x0 and
    eps are linear in each other given x_t, so predicting one predicts the other), and one step
    x_prev = mean(x) + sqrt(var_t) z is linear-Gaussian, mean(x) being the posterior mean (by
    conditioning) at that x0. We read off mean(x) = a x + c by evaluating at x = 0 and x = 1, then
    recurse m <- a m + c, v <- a^2 v + var_t.
    """
    betas = betas.double()
    alpha_bars = alpha_bars_of(betas)
    m, v = mean0.double().clone(), var0.double().clone()
    for step in range(len(betas) - 1, -1, -1):
        t = torch.full((2,), step, dtype=torch.int64)
        x = torch.stack([torch.zeros_like(m), torch.ones_like(m)])  # [2, D]
        x0_hat = gaussian_x0_given_xt(mu, var, alpha_bars[step], x)
        mean, step_var = posterior_by_conditioning(x0_hat, x, t, betas)
        c = mean[0]
        a = mean[1] - mean[0]
        m, v = a * m + c, a**2 * v + step_var[0]
    return m, v
