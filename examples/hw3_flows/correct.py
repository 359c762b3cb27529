"""A correct submission written differently from the reference: hidden degrees spread
evenly (k * (D - 1) // h) instead of k mod (D - 1), the PixelCNN mask from raster
indices, the log-determinant from the transformed columns only, and the base density
from torch.distributions."""
import torch
import torch.nn as nn
from torch.distributions import Normal


def made_masks(in_features, hidden_sizes, order=None):
    d = in_features
    deg_in = torch.arange(d) if order is None else torch.as_tensor(order).long().clone()
    masks, prev = [], deg_in
    for h in hidden_sizes:
        deg = (torch.arange(h) * max(d - 1, 1)) // h  # evenly spread over 0 .. d-2
        masks.append((deg.unsqueeze(1) >= prev.unsqueeze(0)).to(torch.get_default_dtype()))
        prev = deg
    masks.append((deg_in.unsqueeze(1) > prev.unsqueeze(0)).to(torch.get_default_dtype()))
    return masks


def pixelcnn_mask(out_channels, in_channels, kernel_size, mask_type):
    k = kernel_size
    raster = torch.arange(k * k).view(k, k)
    centre = (k // 2) * k + k // 2
    keep = raster < centre if mask_type == "A" else raster <= centre
    return keep.to(torch.get_default_dtype()).repeat(out_channels, in_channels, 1, 1)


class AffineCoupling(nn.Module):
    def __init__(self, mask, net):
        super().__init__()
        self.register_buffer("mask", mask.clone())
        self.net = net

    def _st(self, v):
        m = self.mask.to(v)
        s, t = self.net(v * m).chunk(2, dim=-1)
        return torch.tanh(s), t, m

    def forward(self, x):
        s, t, m = self._st(x)
        y = torch.where(m.bool(), x, x * s.exp() + t)
        return y, s[:, ~m.bool()].sum(-1)

    def inverse(self, y):
        s, t, m = self._st(y)
        return torch.where(m.bool(), y, (y - t) / s.exp())


def flow_log_prob(layers, x):
    log_det = x.new_zeros(x.shape[0])
    for layer in layers:
        x, ld = layer(x)
        log_det = log_det + ld
    return Normal(torch.zeros_like(x), torch.ones_like(x)).log_prob(x).sum(-1) + log_det
