"""AffineCoupling correct only for a conditioner that ignores its input (the constant-net
special case): s and t come from net(0) instead of net(x * mask). Forward, inverse and log_det
are consistent with one another, so only the value pins tell it apart."""
import torch
import torch.nn as nn


class AffineCoupling(nn.Module):
    def __init__(self, mask, net):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask).clone())
        self.net = net

    def _s_t(self, v):
        s, t = self.net(torch.zeros_like(v)).chunk(2, dim=-1)
        return torch.tanh(s), t

    def forward(self, x):
        mask = self.mask.to(x)
        s, t = self._s_t(x)
        return mask * x + (1 - mask) * (x * torch.exp(s) + t), ((1 - mask) * s).sum(-1)

    def inverse(self, y):
        mask = self.mask.to(y)
        s, t = self._s_t(y)
        return mask * y + (1 - mask) * (y - t) * torch.exp(-s)
