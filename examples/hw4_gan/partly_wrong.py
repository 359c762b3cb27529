"""A plausible student submission with three bugs: the discriminator loss takes
log(sigmoid) and log(1 - sigmoid) directly (infinite for confident logits), the
gradient penalty takes the norm over dim 1 only (wrong for images), and the
cycle loss uses squared instead of absolute errors."""
import torch
import torch.nn.functional as nnf


def d_loss_minimax(real_logits, fake_logits):
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return -torch.log(d_real).mean() - torch.log(1 - d_fake).mean()


def g_loss_minimax(fake_logits):
    return nnf.logsigmoid(-fake_logits).mean()


def g_loss_nonsaturating(fake_logits):
    return -nnf.logsigmoid(fake_logits).mean()


def d_loss_lsgan(real_out, fake_out):
    return 0.5 * ((real_out - 1) ** 2).mean() + 0.5 * (fake_out ** 2).mean()


def g_loss_lsgan(fake_out):
    return 0.5 * ((fake_out - 1) ** 2).mean()


def d_loss_wgan(real_out, fake_out):
    return fake_out.mean() - real_out.mean()


def g_loss_wgan(fake_out):
    return -fake_out.mean()


def gradient_penalty(critic, real, fake, alpha):
    alpha = alpha.view(-1, *([1] * (real.dim() - 1)))
    x_hat = alpha * real + (1 - alpha) * fake
    x_hat.requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def cycle_consistency_loss(x, y, G, F):
    return ((F(G(x)) - x) ** 2).mean() + ((G(F(y)) - y) ** 2).mean()
