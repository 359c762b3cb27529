"""Homework 3: autoregressive models and normalising flows.

You will implement

* the connectivity masks of MADE (Germain, Gregor, Murray & Larochelle, 2015,
  "MADE: Masked Autoencoder for Distribution Estimation", section 4 and
  eqs. 12-13): every unit gets a *degree*; a hidden unit of degree ``m`` may
  see inputs of degree ``<= m`` and an output of degree ``d`` may see hidden
  units of degree ``< d``, so output ``i`` depends only on inputs that come
  before it in the ordering;
* the causal convolution masks of PixelCNN (van den Oord, Kalchbrenner &
  Kavukcuoglu, 2016, "Pixel Recurrent Neural Networks", section 3.4): mask
  'A' (first layer) hides the current pixel, mask 'B' lets it through;
* the affine coupling layer of RealNVP (Dinh, Sohl-Dickstein & Bengio, 2017,
  "Density estimation using Real NVP", eqs. 6-9) with a ``tanh``-bounded
  log-scale, and its exact inverse and log-determinant;
* the change-of-variables log-likelihood of a stack of flow layers
  (Dinh et al. 2017, eq. 3): ``log p(x) = log N(f(x); 0, I) + sum_l log|det J_l|``.

Conventions: keep the dtype and device of the inputs, never modify inputs in
place, and keep everything differentiable.
"""

# How to check your work before you submit (the public checks; nothing is sent
# anywhere), with the course's student bundle (pip install
# dgm_grade_student_hw3_flows-*.whl):
#
# - in a notebook (Jupyter, Colab), in a new cell: from dgm_grade.hw3_flows import
#   check; check() (or check("function_name")): it checks the functions as your kernel
#   defines them now;
# - in a terminal: dgm-check-hw3-flows flows.py (or flows.ipynb).
#
# What is graded: the functions below. The public checks (34 points) are the ones you
# can see and run; hidden checks, which compare with the solution, grade the other 13
# points after you submit.

from __future__ import annotations
import math
from typing import Sequence
import torch
import torch.nn as nn


def made_masks(in_features: int, hidden_sizes: Sequence[int], order=None) -> list:
    """Binary connectivity masks for a MADE network.

    The network is ``Linear(in_features, h_1) -> ... -> Linear(h_L, in_features)``.
    Return one float 0/1 mask per linear layer, shaped like that layer's
    ``weight`` (``[out, in]``): ``[h_1, in_features]``, ``[h_2, h_1]``, ...,
    ``[in_features, h_L]``.

    Degrees (Germain et al. 2015, section 4):

    * input ``j`` has degree ``order[j]``;
    * hidden unit ``k`` of every hidden layer gets a degree in
      ``0 .. in_features - 2``; choose them deterministically, e.g.
      ``k mod (in_features - 1)``, so that every layer with at least
      ``in_features - 1`` units uses every degree (any such choice is
      fine: the checks accept every mask that follows the two rules below
      for some hidden degrees);
    * a hidden unit of degree ``m`` connects to a previous unit of degree
      ``m'`` iff ``m >= m'``;
    * output ``i`` (degree ``order[i]``) connects to a hidden unit of degree
      ``m`` iff ``order[i] > m`` (strict!).

    Then output ``i`` depends only on inputs ``j`` with ``order[j] < order[i]``.
    With ``hidden_sizes = []`` there is a single ``[in_features, in_features]``
    mask whose entry ``[i, j]`` is 1 iff ``order[j] < order[i]``. Handle
    ``in_features == 1`` (the only output then depends on nothing).

    Args:
        in_features: number of inputs ``D`` (= number of outputs).
        hidden_sizes: widths of the hidden layers, possibly empty.
        order: a permutation of ``0 .. D-1`` (list or tensor); ``None`` means
            the identity ``0, 1, ..., D-1``.

    Returns:
        list of ``len(hidden_sizes) + 1`` float tensors of 0s and 1s (any
        floating dtype; torch's default dtype is a good choice).
    """
    raise NotImplementedError  # TODO: your implementation


def pixelcnn_mask(out_channels: int, in_channels: int, kernel_size: int, mask_type: str) -> torch.Tensor:
    """Raster-scan causal mask for a PixelCNN convolution kernel.

    For an odd ``kernel_size`` ``k`` with centre ``c = k // 2``, the spatial
    mask ``m[r, col]`` is 1 for every position strictly above the centre row,
    and for positions left of the centre in the centre row; everything below
    the centre row and right of the centre is 0. The centre itself is 0 for
    ``mask_type == 'A'`` and 1 for ``'B'``. The same spatial mask is used for
    every (output, input) channel pair (no channel grouping).

    Args:
        out_channels: number of output channels.
        in_channels: number of input channels.
        kernel_size: odd spatial size ``k``.
        mask_type: ``'A'`` or ``'B'``.

    Returns:
        ``[out_channels, in_channels, k, k]`` float 0/1 tensor (any floating
        dtype; torch's default dtype is a good choice), to be multiplied into
        a ``nn.Conv2d`` weight.
    """
    raise NotImplementedError  # TODO: your implementation


class AffineCoupling(nn.Module):
    """RealNVP affine coupling layer (Dinh et al. 2017, eqs. 7-9).

    Construct with ``mask: [D]`` (0/1; entries with 1 pass through unchanged)
    and ``net``, a module mapping ``[B, D] -> [B, 2D]``. Keep both (store the
    mask e.g. with ``self.register_buffer``).

    Forward (data -> latent), with ``s, t = net(x * mask).chunk(2, dim=-1)``
    and ``s = tanh(s)``::

        y       = mask * x + (1 - mask) * (x * exp(s) + t)
        log_det = sum_d (1 - mask_d) * s_d          # log |det dy/dx|, [B]

    Inverse: since ``y * mask == x * mask``, recompute ``s, t`` from
    ``net(y * mask)`` and solve for ``x`` on the transformed entries.
    """

    def __init__(self, mask: torch.Tensor, net: nn.Module):
        """Store the mask ``[D]`` and the conditioner ``net: [B, D] -> [B, 2D]``."""
        raise NotImplementedError  # TODO: your implementation

    def forward(self, x: torch.Tensor):
        """Transform ``x: [B, D]`` towards the latent.

        Returns:
            ``(y, log_det)`` with ``y: [B, D]`` and ``log_det: [B]``.
        """
        raise NotImplementedError  # TODO: your implementation

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Invert ``forward``: ``y: [B, D] -> x: [B, D]``.

        ``x = mask * y + (1 - mask) * (y - t) * exp(-s)`` with ``s, t``
        computed from ``net(y * mask)`` exactly as in ``forward``.
        """
        raise NotImplementedError  # TODO: your implementation


def flow_log_prob(layers, x: torch.Tensor) -> torch.Tensor:
    """Exact log-likelihood under a normalising flow with a N(0, I) base.

    Push ``x`` through the layers in order (``z, log_det = layer(z)``),
    accumulating the log-determinants, then (change of variables)::

        log p(x) = log N(z; 0, I) + sum_l log_det_l
        log N(z; 0, I) = -0.5 * sum_d (z_d^2 + log(2 pi))

    Args:
        layers: list of modules whose ``forward`` maps data towards the
            latent and returns ``(y, log_det[B])``.
        x: ``[B, D]`` data.

    Returns:
        ``[B]`` log p(x).
    """
    raise NotImplementedError  # TODO: your implementation
