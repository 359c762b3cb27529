"""Judge-side helpers for the hw2 checks: toy VAEs and exact 1-D latent integrals.

No reference code here: these are the model's definitions (prior N(0, 1),
Bernoulli decoder) integrated numerically, usable by public checks.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import Fixture
from grader.worker.fixtures import build
from grader.worker.fixtures.vae import MLPVAE

# Gauss-Hermite nodes/weights for  int N(z; 0, 1) f(z) dz  ~=  sum_i w_i f(z_i)
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(120)
GH_NODES = torch.from_numpy(_NODES)
GH_WEIGHTS = torch.from_numpy(_WEIGHTS / math.sqrt(2 * math.pi))


def vae_fixture(x_dim: int, z_dim: int, hidden: list[int], dtype: torch.dtype,
                generator: torch.Generator) -> tuple[Fixture, torch.nn.Module]:
    """A random MLP VAE as a Fixture for the worker, and the same model built here."""
    params = {"x_dim": x_dim, "z_dim": z_dim, "hidden": hidden}
    shapes = {k: v.shape for k, v in MLPVAE(x_dim, z_dim, hidden).state_dict().items()}
    weights = {k: (0.7 * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype)
               for k, shape in shapes.items()}
    return Fixture("mlp_vae", params, weights), build("mlp_vae", params, weights)


def linear_vae(enc_mean: float, enc_log_var: float, dec_w: torch.Tensor, dec_b: torch.Tensor,
               dtype: torch.dtype = torch.float64) -> Fixture:
    """1-D latent VAE whose encoder ignores x: q(z|x) = N(enc_mean, exp(enc_log_var)), logits = z w + b."""
    d = dec_w.numel()
    weights = {
        "encoder.0.weight": torch.zeros(2, d, dtype=dtype),
        "encoder.0.bias": torch.tensor([enc_mean, enc_log_var], dtype=dtype),
        "decoder.0.weight": dec_w.reshape(d, 1).to(dtype),
        "decoder.0.bias": dec_b.to(dtype),
    }
    return Fixture("mlp_vae", {"x_dim": d, "z_dim": 1, "hidden": []}, weights)


def log_px_given_z(x: torch.Tensor, z: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log p(x | z) for logits = z w + b. x: [D], z: [N] -> [N]."""
    logits = z[:, None] * w + b
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)


def log_px_quadrature(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> float:
    """log p(x) = log int N(z; 0, 1) p(x|z) dz, by Gauss-Hermite quadrature (float64)."""
    return float(torch.logsumexp(GH_WEIGHTS.log() + log_px_given_z(x, GH_NODES, w, b), 0))


def moments_under_q(f, mean: float, log_var: float) -> tuple[float, float]:
    """(E_q f(z), Var_q f(z)) for q = N(mean, exp(log_var)), by Gauss-Hermite quadrature."""
    values = f(mean + math.exp(0.5 * log_var) * GH_NODES)
    m = float((GH_WEIGHTS * values).sum())
    return m, float((GH_WEIGHTS * (values - m) ** 2).sum())
