"""Judge-side helpers for the hw4 checks: critics, maps, and discrete distributions.

No reference code here. Each helper returns the Fixture the worker builds and,
where a check needs it, the same module built here (float64) so the judge can
evaluate closed forms and definitions itself.
"""
from __future__ import annotations

import math

import torch

from grader.checks import Fixture
from grader.worker.fixtures import build
from grader.worker.fixtures.gan import MLPCritic, MLPMap


def linear_critic(weight: torch.Tensor, bias: float, dtype: torch.dtype, keepdim: bool) -> Fixture:
    """c(x) = <weight, x> + bias over all non-batch dims; its input gradient is ``weight``."""
    weights = {"weight": weight.to(dtype), "bias": torch.tensor(float(bias), dtype=dtype)}
    return Fixture("linear_critic", {"keepdim": keepdim}, weights)


def quadratic_critic(scale: torch.Tensor, center: torch.Tensor, dtype: torch.dtype, keepdim: bool) -> Fixture:
    """c(x) = 0.5 sum scale (x - center)^2; its input gradient is scale (x - center)."""
    return Fixture("quadratic_critic", {"keepdim": keepdim}, {"scale": scale.to(dtype), "center": center.to(dtype)})


def mlp_critic(event_shape: tuple[int, ...], hidden: list[int], dtype: torch.dtype, keepdim: bool,
               generator: torch.Generator) -> tuple[Fixture, torch.nn.Module]:
    """A random tanh-MLP critic as a Fixture, and the same critic built here in float64."""
    params = {"event_shape": list(event_shape), "hidden": hidden, "keepdim": keepdim}
    shapes = {k: v.shape for k, v in MLPCritic(event_shape, hidden, keepdim).state_dict().items()}
    weights = {k: torch.randn(s, generator=generator, dtype=torch.float64) for k, s in shapes.items()}
    module = build("mlp_critic", params, weights)
    return Fixture("mlp_critic", params, {k: v.to(dtype) for k, v in weights.items()}), module


def linear_map(weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype) -> tuple[Fixture, torch.nn.Module]:
    """y = x @ weight.T + bias on the last dim, as a Fixture and built here (float64)."""
    weights = {"weight": weight.double(), "bias": bias.double()}
    return (Fixture("linear_map", {}, {k: v.to(dtype) for k, v in weights.items()}),
            build("linear_map", {}, weights))


def invertible_pair(d: int, dtype: torch.dtype, generator: torch.Generator) -> tuple[Fixture, Fixture]:
    """(G, F) linear maps on R^d with F = G^{-1}: G(x) = x Q diag(s) + b, s in [0.5, 2]."""
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    s = 0.5 + 1.5 * torch.rand(d, generator=generator, dtype=torch.float64)
    b = torch.randn(d, generator=generator, dtype=torch.float64)
    w = q * s  # columns of q scaled: w = q diag(s)
    w_inv = torch.linalg.inv(w)
    g, _ = linear_map(w, b, dtype)
    f, _ = linear_map(w_inv, -w_inv @ b, dtype)
    return g, f


def mlp_map(n_in: int, n_out: int, hidden: list[int], dtype: torch.dtype,
            generator: torch.Generator) -> tuple[Fixture, torch.nn.Module]:
    """A random tanh-MLP map on the last dim as a Fixture, and built here in float64."""
    params = {"n_in": n_in, "n_out": n_out, "hidden": hidden}
    shapes = {k: v.shape for k, v in MLPMap(n_in, n_out, hidden).state_dict().items()}
    weights = {k: torch.randn(s, generator=generator, dtype=torch.float64) for k, s in shapes.items()}
    return Fixture("mlp_map", params, {k: v.to(dtype) for k, v in weights.items()}), build("mlp_map", params, weights)


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> float:
    """JSD(p, q) = 0.5 KL(p || m) + 0.5 KL(q || m), m = (p + q) / 2, for strictly positive p, q."""
    m = 0.5 * (p + q)
    return float(0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum())


def batches_with_distributions(counts_p: list[int], counts_q: list[int], generator: torch.Generator
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                          torch.Tensor, torch.Tensor]:
    """A support of K points and two batches whose empirical distributions are exactly p and q.

    Point k appears counts_p[k] times in the real batch and counts_q[k] times in
    the fake batch (each shuffled). Returns (p, q, real_index, fake_index,
    optimal_logits, optimal_d): ``real_index`` / ``fake_index`` say which support
    point each batch entry is; ``optimal_logits[k] = log p_k - log q_k``, the logit
    of the optimal discriminator D*_k = p_k / (p_k + q_k).
    """
    cp = torch.tensor(counts_p, dtype=torch.float64)
    cq = torch.tensor(counts_q, dtype=torch.float64)
    p, q = cp / cp.sum(), cq / cq.sum()
    k = torch.arange(len(counts_p))
    real_index = k.repeat_interleave(torch.tensor(counts_p))
    fake_index = k.repeat_interleave(torch.tensor(counts_q))
    real_index = real_index[torch.randperm(len(real_index), generator=generator)]
    fake_index = fake_index[torch.randperm(len(fake_index), generator=generator)]
    return p, q, real_index, fake_index, p.log() - q.log(), p / (p + q)


LOG4 = math.log(4.0)
