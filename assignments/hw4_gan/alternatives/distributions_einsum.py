"""Alternative: torch.distributions for the log-likelihoods, einsum for every mean and norm.

Written from the handout alone. log D(x) and log(1 - D(x)) are Bernoulli(logits=l) log-probabilities
of 1 and 0; means are einsum contractions divided by the element count; the interpolation uses
torch.lerp; the gradient norm is sqrt(einsum(g, g) + 1e-12) (an epsilon the handout allows); the cycle
loss uses ord-1 vector norms.
"""
from __future__ import annotations

import torch
from torch.distributions import Bernoulli


def _mean(t: torch.Tensor) -> torch.Tensor:
    flat = t.reshape(-1)
    return torch.einsum("i->", flat) / flat.numel()


def _log_d(logits: torch.Tensor) -> torch.Tensor:
    return Bernoulli(logits=logits).log_prob(torch.ones_like(logits))


def _log_one_minus_d(logits: torch.Tensor) -> torch.Tensor:
    return Bernoulli(logits=logits).log_prob(torch.zeros_like(logits))


def d_loss_minimax(real_logits, fake_logits):
    return -_mean(_log_d(real_logits)) - _mean(_log_one_minus_d(fake_logits))


def g_loss_minimax(fake_logits):
    return _mean(_log_one_minus_d(fake_logits))


def g_loss_nonsaturating(fake_logits):
    return -_mean(_log_d(fake_logits))


def _half_mean_square(t: torch.Tensor) -> torch.Tensor:
    flat = t.reshape(-1)
    return 0.5 * torch.einsum("i,i->", flat, flat) / flat.numel()


def d_loss_lsgan(real_out, fake_out):
    return _half_mean_square(real_out - 1) + _half_mean_square(fake_out)


def g_loss_lsgan(fake_out):
    return _half_mean_square(fake_out - 1)


def d_loss_wgan(real_out, fake_out):
    return _mean(fake_out) - _mean(real_out)


def g_loss_wgan(fake_out):
    return -_mean(fake_out)


def gradient_penalty(critic, real, fake, alpha):
    weight = alpha.reshape(-1, *([1] * (real.dim() - 1))).expand_as(real).to(real.dtype)
    x_hat = torch.lerp(fake, real, weight)
    if not x_hat.requires_grad:
        x_hat = x_hat.requires_grad_()
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    g = grad.flatten(start_dim=1)
    norms = torch.sqrt(torch.einsum("bi,bi->b", g, g) + 1e-12)
    return _mean((norms - 1) ** 2)


def cycle_consistency_loss(x, y, G, F):
    rx, ry = F(G(x)) - x, G(F(y)) - y
    return (torch.linalg.vector_norm(rx.reshape(-1), ord=1) / rx.numel()
            + torch.linalg.vector_norm(ry.reshape(-1), ord=1) / ry.numel())
