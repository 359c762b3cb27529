"""Alternative: every loss computed in float64 inside and cast back, in softplus form.

Written from the handout alone. log D(l) = -softplus(-l) and log(1 - D(l)) = -softplus(l);
the least-squares losses through F.mse_loss against constant targets; the Wasserstein losses
as sums divided by the number of elements; the gradient penalty's norm taken in float64 as the
square root of the summed squares; the cycle loss as float64 L1 means.
"""
from __future__ import annotations

import torch
import torch.nn.functional as nnf


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float64).reshape(-1)


def d_loss_minimax(real_logits, fake_logits):
    loss = nnf.softplus(-_wide(real_logits)).mean() + nnf.softplus(_wide(fake_logits)).mean()
    return loss.to(real_logits.dtype)


def g_loss_minimax(fake_logits):
    return (-nnf.softplus(_wide(fake_logits))).mean().to(fake_logits.dtype)


def g_loss_nonsaturating(fake_logits):
    return nnf.softplus(-_wide(fake_logits)).mean().to(fake_logits.dtype)


def d_loss_lsgan(real_out, fake_out):
    r, f = _wide(real_out), _wide(fake_out)
    loss = 0.5 * nnf.mse_loss(r, torch.ones_like(r)) + 0.5 * nnf.mse_loss(f, torch.zeros_like(f))
    return loss.to(real_out.dtype)


def g_loss_lsgan(fake_out):
    f = _wide(fake_out)
    return (0.5 * nnf.mse_loss(f, torch.ones_like(f))).to(fake_out.dtype)


def d_loss_wgan(real_out, fake_out):
    r, f = _wide(real_out), _wide(fake_out)
    return (f.sum() / f.numel() - r.sum() / r.numel()).to(real_out.dtype)


def g_loss_wgan(fake_out):
    f = _wide(fake_out)
    return (-(f.sum() / f.numel())).to(fake_out.dtype)


def gradient_penalty(critic, real, fake, alpha):
    b = real.shape[0]
    a = alpha.to(real.dtype).view(b, *([1] * (real.dim() - 1)))
    x_hat = (a * real + (1 - a) * fake).detach().requires_grad_(True)  # the critic runs in the data's dtype
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)
    g = grad.to(torch.float64).reshape(b, -1)
    norms = torch.sqrt((g * g).sum(dim=1))
    return ((norms - 1.0) ** 2).mean().to(real.dtype)


def cycle_consistency_loss(x, y, G, F):
    forward = (F(G(x)).to(torch.float64) - x.to(torch.float64)).abs().mean()
    backward = (G(F(y)).to(torch.float64) - y.to(torch.float64)).abs().mean()
    return (forward + backward).to(x.dtype)
