"""Alternative: explicit Python loops over the batch, log-space through logaddexp.

Written from the handout alone. log D(l) = -logaddexp(0, -l) and log(1 - D(l)) = -logaddexp(0, l),
accumulated element by element; the gradient penalty builds one x_hat per example, calls the critic
on a batch of one and differentiates that example alone; the cycle loss maps one row at a time.
"""
from __future__ import annotations

import torch


def _elements(t: torch.Tensor):
    flat = t.reshape(-1)
    return [flat[i] for i in range(flat.shape[0])], flat.shape[0]


def _mean_of(fn, t: torch.Tensor) -> torch.Tensor:
    items, n = _elements(t)
    total = torch.zeros((), dtype=t.dtype, device=t.device)
    for v in items:
        total = total + fn(v)
    return total / n


def _log_d(l):
    return -torch.logaddexp(torch.zeros_like(l), -l)


def _log_one_minus_d(l):
    return -torch.logaddexp(torch.zeros_like(l), l)


def d_loss_minimax(real_logits, fake_logits):
    return -_mean_of(_log_d, real_logits) - _mean_of(_log_one_minus_d, fake_logits)


def g_loss_minimax(fake_logits):
    return _mean_of(_log_one_minus_d, fake_logits)


def g_loss_nonsaturating(fake_logits):
    return -_mean_of(_log_d, fake_logits)


def d_loss_lsgan(real_out, fake_out):
    return 0.5 * _mean_of(lambda v: (v - 1) * (v - 1), real_out) + 0.5 * _mean_of(lambda v: v * v, fake_out)


def g_loss_lsgan(fake_out):
    return 0.5 * _mean_of(lambda v: (v - 1) * (v - 1), fake_out)


def d_loss_wgan(real_out, fake_out):
    return _mean_of(lambda v: v, fake_out) - _mean_of(lambda v: v, real_out)


def g_loss_wgan(fake_out):
    return -_mean_of(lambda v: v, fake_out)


def gradient_penalty(critic, real, fake, alpha):
    batch = real.shape[0]
    total = torch.zeros((), dtype=real.dtype, device=real.device)
    for b in range(batch):
        a = alpha[b].to(real.dtype)
        x_b = (a * real[b:b + 1] + (1 - a) * fake[b:b + 1]).detach().requires_grad_(True)
        out = critic(x_b)  # [1] or [1, 1]
        (grad,) = torch.autograd.grad(out.sum(), x_b, create_graph=True)
        squares = torch.zeros((), dtype=real.dtype, device=real.device)
        for v in grad.reshape(-1):
            squares = squares + v * v
        total = total + (torch.sqrt(squares) - 1) ** 2
    return total / batch


def _cycle_term(rows: torch.Tensor, there, back) -> torch.Tensor:
    flat = rows.reshape(-1, rows.shape[-1])
    total = torch.zeros((), dtype=rows.dtype, device=rows.device)
    for i in range(flat.shape[0]):
        row = flat[i:i + 1]
        total = total + (back(there(row)) - row).abs().sum()
    return total / rows.numel()


def cycle_consistency_loss(x, y, G, F):
    return _cycle_term(x, G, F) + _cycle_term(y, F, G)
