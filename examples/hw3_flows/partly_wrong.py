"""A plausible student submission with three bugs: MADE's output layer uses >= instead of
the strict > (output i then sees input i itself), PixelCNN type 'A' keeps the centre pixel
(same as 'B'), and flow_log_prob subtracts the log-determinants instead of adding them.
The masks are also hard-coded float32 (.float()), which costs the default-dtype checks."""
import math

import torch
import torch.nn as nn


def made_masks(in_features, hidden_sizes, order=None):
    if order is None:
        order = list(range(in_features))
    degrees = torch.tensor(list(order))
    masks = []
    for size in hidden_sizes:
        hidden = torch.arange(size) % max(in_features - 1, 1)
        masks.append((hidden[:, None] >= degrees[None, :]).float())
        degrees = hidden
    masks.append((torch.tensor(list(order))[:, None] >= degrees[None, :]).float())  # bug: must be >
    return masks


def pixelcnn_mask(out_channels, in_channels, kernel_size, mask_type):
    mask = torch.ones(out_channels, in_channels, kernel_size, kernel_size)
    c = kernel_size // 2
    mask[:, :, c, c + 1:] = 0
    mask[:, :, c + 1:, :] = 0  # bug: type 'A' should also zero the centre
    return mask


class AffineCoupling(nn.Module):
    def __init__(self, mask, net):
        super().__init__()
        self.mask = mask
        self.net = net

    def forward(self, x):
        s, t = self.net(x * self.mask).chunk(2, dim=-1)
        s = torch.tanh(s)
        y = self.mask * x + (1 - self.mask) * (x * torch.exp(s) + t)
        return y, ((1 - self.mask) * s).sum(-1)

    def inverse(self, y):
        s, t = self.net(y * self.mask).chunk(2, dim=-1)
        s = torch.tanh(s)
        return self.mask * y + (1 - self.mask) * (y - t) * torch.exp(-s)


def flow_log_prob(layers, x):
    z, total = x, 0.0
    for layer in layers:
        z, log_det = layer(z)
        total = total - log_det  # bug: the change of variables adds log|det|
    return -0.5 * (z ** 2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi) + total
