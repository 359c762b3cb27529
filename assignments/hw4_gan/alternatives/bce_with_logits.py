"""Alternative: the common PyTorch idiom, binary cross-entropy with logits and built-in reductions.

Written from the handout alone. -log D(l) = BCE(l, 1) and -log(1 - D(l)) = BCE(l, 0)
(F.binary_cross_entropy_with_logits, reduction "mean"); the least-squares losses with
F.mse_loss; x_hat = fake + alpha (real - fake) made a fresh leaf (the handout checks no gradient
into real or fake); the input gradient through grad_outputs of ones; the norm with
Tensor.norm(2, dim=1); the cycle loss with F.l1_loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss_minimax(real_logits, fake_logits):
    real_term = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_term + fake_term


def g_loss_minimax(fake_logits):
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def g_loss_nonsaturating(fake_logits):
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def d_loss_lsgan(real_out, fake_out):
    real_term = F.mse_loss(real_out, torch.ones_like(real_out))
    return 0.5 * real_term + 0.5 * F.mse_loss(fake_out, torch.zeros_like(fake_out))


def g_loss_lsgan(fake_out):
    return 0.5 * F.mse_loss(fake_out, torch.ones_like(fake_out))


def d_loss_wgan(real_out, fake_out):
    return torch.mean(fake_out) - torch.mean(real_out)


def g_loss_wgan(fake_out):
    return -torch.mean(fake_out)


def gradient_penalty(critic, real, fake, alpha):
    alpha = alpha.view(-1, *([1] * (real.dim() - 1)))
    x_hat = (fake + alpha * (real - fake)).detach()
    x_hat.requires_grad_()
    out = critic(x_hat)
    grad = torch.autograd.grad(outputs=out, inputs=x_hat, grad_outputs=torch.ones_like(out),
                               create_graph=True, retain_graph=True)[0]
    grad = grad.view(grad.size(0), -1)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def cycle_consistency_loss(x, y, G, F):
    import torch.nn.functional as functional  # F is the map Y -> X here

    return functional.l1_loss(F(G(x)), x) + functional.l1_loss(G(F(y)), y)
