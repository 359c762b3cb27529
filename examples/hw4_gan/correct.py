"""A correct submission written differently from the reference: softplus and
binary_cross_entropy_with_logits for the log-sigmoid terms, the penalty's
gradient norm from the flattened gradient, and l1_loss for the cycle."""
import torch
import torch.nn.functional as nnf


def d_loss_minimax(real_logits, fake_logits):
    real_term = nnf.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake_term = nnf.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_term + fake_term


def g_loss_minimax(fake_logits):
    # log(1 - sigmoid(l)) = -softplus(l)
    return -nnf.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits):
    # -log sigmoid(l) = softplus(-l)
    return nnf.softplus(-fake_logits).mean()


def d_loss_lsgan(real_out, fake_out):
    return 0.5 * nnf.mse_loss(real_out, torch.ones_like(real_out)) + 0.5 * fake_out.pow(2).mean()


def g_loss_lsgan(fake_out):
    return 0.5 * nnf.mse_loss(fake_out, torch.ones_like(fake_out))


def d_loss_wgan(real_out, fake_out):
    return -(real_out.mean() - fake_out.mean())


def g_loss_wgan(fake_out):
    return fake_out.mean().neg()


def gradient_penalty(critic, real, fake, alpha):
    shape = (-1,) + (1,) * (real.dim() - 1)
    a = alpha.to(real.dtype).view(shape)
    x_hat = (fake + a * (real - fake)).detach().requires_grad_(True)
    scores = critic(x_hat)
    grad = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)[0]
    norms = grad.flatten(start_dim=1).pow(2).sum(dim=1).sqrt()
    return (norms - 1).pow(2).mean()


def cycle_consistency_loss(x, y, G, F):
    return nnf.l1_loss(F(G(x)), x) + nnf.l1_loss(G(F(y)), y)
