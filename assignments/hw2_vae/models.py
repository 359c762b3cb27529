"""Judge-side helpers for the hw2 checks: toy VAEs, exact constants of a 1-D latent model, handout quotes.

Students read this file (and checks_public.py): nothing here computes a graded
function. The 1-D latent model's integrals (E_q log p(x|z), log p(x), ...) are
numbers, computed once by Gauss-Hermite quadrature of the model's definition;
tests/test_hw2_vae.py recomputes them.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from grader.checks import CheckFailed, Fixture
from grader.client import StudentError
from grader.worker.fixtures import build
from grader.worker.fixtures.vae import MLPVAE

Z_FAIL = 6.0  # |N(0,1)| > 6 has probability 2e-9: the false-fail bound of a single z-test


@contextmanager
def handout(*sentences: str) -> Iterator[None]:
    """A property failing inside this block (or the student's code raising there) ends its message with
    the handout sentences the property follows from."""
    quoted = "\nThe handout says:\n" + "\n".join(f"  {s}" for s in sentences)
    try:
        yield
    except CheckFailed as exc:
        failure = CheckFailed(f"{exc}{quoted}")
        failure.__notes__ = list(getattr(exc, "__notes__", []))
        raise failure from None
    except StudentError as exc:
        exc.handout = exc.handout or quoted  # the innermost block's sentences
        raise


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


def binary_vectors(d: int) -> torch.Tensor:
    """Every x in {0, 1}^d, as a float64 tensor [2^d, d] (row i holds the bits of i)."""
    i = torch.arange(2**d)
    return ((i[:, None] >> torch.arange(d)) & 1).double()


@dataclass(frozen=True)
class Moments:
    """E_q f(z) and Var_q f(z) of one quantity under q(z|x)."""

    mean: float
    var: float


# ---------------------------------------------------------------------- the 1-D latent model

# p(z) = N(0, 1), logits = z DEC_W + DEC_B, one x, and a deliberately imperfect q(z|x) = N(0.4, exp(-1)).
DEC_W = torch.tensor([2.5, -2.0, 1.5, 3.0], dtype=torch.float64)
DEC_B = torch.tensor([0.2, -0.3, 0.1, -0.5], dtype=torch.float64)
X_ONE = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
ENC_MEAN, ENC_LOG_VAR = 0.4, -1.0

