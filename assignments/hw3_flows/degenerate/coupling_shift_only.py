"""AffineCoupling without the scale: y = x + (1 - mask) * t, log_det = 0, inverse y - (1 - mask) * t.
A bijection whose log_det is its true log|det| and whose inverse is exact, so every consistency
property holds; only the definition (the hidden value pins) tells it apart."""
import torch
import torch.nn as nn


class AffineCoupling(nn.Module):
    def __init__(self, mask, net):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask).clone())
        self.net = net

    def forward(self, x):
        mask = self.mask.to(x)
        _, t = self.net(x * mask).chunk(2, dim=-1)
        return x + (1 - mask) * t, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def inverse(self, y):
        mask = self.mask.to(y)
        _, t = self.net(y * mask).chunk(2, dim=-1)
        return y - (1 - mask) * t
