"""Alternative correct flows.py, written from the handout alone.

Style: explicit Python loops over units, pixels and dimensions; masks built as
nested lists and returned in float32 whatever the default dtype (the handout
asks for "float 0/1" masks); hidden degrees spread evenly over 0 .. D-2
(floor(k (D-1) / h), not k mod (D-1)); the coupling layer and the flow
computed in float64 inside and cast back to the input's dtype; the layer keeps
its mask and conditioner under other attribute names.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def made_masks(in_features, hidden_sizes, order=None):
    n = in_features
    if order is None:
        input_degrees = list(range(n))
    else:
        input_degrees = [int(v) for v in order]
    masks = []
    previous = input_degrees
    for width in hidden_sizes:
        # evenly spread degrees 0 .. n-2: consecutive units differ by at most 1 when width >= n - 1
        degrees = [(k * max(n - 1, 1)) // width for k in range(width)]
        rows = []
        for k in range(width):
            rows.append([1.0 if degrees[k] >= previous[j] else 0.0 for j in range(len(previous))])
        masks.append(torch.tensor(rows, dtype=torch.float32))
        previous = degrees
    rows = []
    for i in range(n):
        rows.append([1.0 if input_degrees[i] > previous[j] else 0.0 for j in range(len(previous))])
    masks.append(torch.tensor(rows, dtype=torch.float32))
    return masks


def pixelcnn_mask(out_channels, in_channels, kernel_size, mask_type):
    centre = kernel_size // 2
    mask = torch.zeros(out_channels, in_channels, kernel_size, kernel_size)
    for row in range(kernel_size):
        for col in range(kernel_size):
            before = row < centre or (row == centre and col < centre)
            at_centre = row == centre and col == centre
            if before or (at_centre and mask_type == "B"):
                mask[:, :, row, col] = 1.0
    return mask


class AffineCoupling(nn.Module):
    def __init__(self, mask, net):
        super().__init__()
        self.conditioner = net
        self.register_buffer("pass_through", torch.as_tensor(mask).detach().clone())

    def _scale_shift(self, visible):
        """s (after tanh) and t in float64, from the conditioner applied in the input's dtype."""
        out = self.conditioner(visible)
        d = visible.shape[-1]
        return torch.tanh(out[:, :d]).double(), out[:, d:].double()

    def forward(self, x):
        keep = self.pass_through.to(device=x.device, dtype=torch.float64)
        s, t = self._scale_shift(x * keep.to(x.dtype))
        x64 = x.double()
        y = keep * x64 + (1.0 - keep) * (x64 * torch.exp(s) + t)
        log_det = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        for d in range(x.shape[1]):
            log_det = log_det + (1.0 - keep[d]) * s[:, d]
        return y.to(x.dtype), log_det.to(x.dtype)

    def inverse(self, y):
        keep = self.pass_through.to(device=y.device, dtype=torch.float64)
        s, t = self._scale_shift(y * keep.to(y.dtype))
        y64 = y.double()
        x = keep * y64 + (1.0 - keep) * ((y64 - t) * torch.exp(-s))
        return x.to(y.dtype)


def flow_log_prob(layers, x):
    z = x
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for layer in layers:
        z, log_det = layer(z)
        total = total + log_det.double()
    z64 = z.double()
    log_base = torch.zeros_like(total)
    for d in range(z64.shape[1]):
        log_base = log_base - 0.5 * z64[:, d] ** 2 - 0.5 * math.log(2 * math.pi)
    return (log_base + total).to(x.dtype)
