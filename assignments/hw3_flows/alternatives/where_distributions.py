"""Alternative correct flows.py, written from the handout alone.

Style: boolean tensors and ``torch.where`` instead of arithmetic with the
mask; MADE degrees 1-based as in the paper (inputs 1..D, hidden units
1..D-1 counting down from D-1), masks in torch's default dtype; the PixelCNN
mask from raster indices (``index < centre``); the coupling keeps its mask as
a plain bool attribute, splits the conditioner's output with
``tensor_split`` and sums the log-scales with ``einsum``; the base density
is ``torch.distributions.Independent(Normal(0, 1), 1)`` and the
log-determinants are stacked and summed at the end.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.distributions import Independent, Normal


def made_masks(in_features, hidden_sizes, order=None):
    if order is None:
        inputs = torch.arange(1, in_features + 1)
    else:
        inputs = torch.as_tensor([int(v) for v in order]) + 1  # paper: degrees 1 .. D
    levels = max(in_features - 1, 1)
    degrees = [inputs]
    for width in hidden_sizes:
        degrees.append(levels - torch.arange(width) % levels)  # D-1, D-2, ..., 1, D-1, ...
    connections = [later[:, None] >= earlier[None, :] for earlier, later in zip(degrees[:-1], degrees[1:])]
    connections.append(inputs[:, None] > degrees[-1][None, :])
    return [c.to(torch.get_default_dtype()) for c in connections]


def pixelcnn_mask(out_channels, in_channels, kernel_size, mask_type):
    index = torch.arange(kernel_size * kernel_size).reshape(kernel_size, kernel_size)
    centre = (kernel_size * kernel_size) // 2  # raster index of the centre pixel (odd kernel)
    visible = index < centre if mask_type == "A" else index <= centre
    spatial = visible.to(torch.get_default_dtype())
    return spatial.repeat(out_channels, in_channels, 1, 1)


class AffineCoupling(nn.Module):
    def __init__(self, mask, net):
        super().__init__()
        self.net = net
        self.frozen = torch.as_tensor(mask).bool()

    def _log_scale_and_shift(self, inputs):
        frozen = self.frozen.to(inputs.device)
        visible = torch.where(frozen, inputs, torch.zeros_like(inputs))
        raw_scale, shift = torch.tensor_split(self.net(visible), 2, dim=-1)
        log_scale = torch.where(frozen, torch.zeros_like(raw_scale), torch.tanh(raw_scale))
        return frozen, log_scale, shift

    def forward(self, x):
        frozen, log_scale, shift = self._log_scale_and_shift(x)
        y = torch.where(frozen, x, x * torch.exp(log_scale) + shift)
        return y, torch.einsum("bd->b", log_scale)

    def inverse(self, y):
        frozen, log_scale, shift = self._log_scale_and_shift(y)
        return torch.where(frozen, y, (y - shift) * torch.exp(-log_scale))


def flow_log_prob(layers, x):
    z = x
    log_dets = []
    for layer in layers:
        z, log_det = layer(z)
        log_dets.append(log_det)
    base = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1)
    log_prob = base.log_prob(z)
    if log_dets:
        log_prob = log_prob + torch.stack(log_dets).sum(0)
    return log_prob
