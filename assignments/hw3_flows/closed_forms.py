"""Hidden-only helpers for hw3's checks: the values of graded functions, derived by another route.

Imported by checks_hidden.py only, never by checks_public.py or models.py, so the student
bundle (grader/deploy/student.py ships checks_public.py and what it imports) leaves this
file out; the Gradescope autograder and the TA wheel carry it with the hidden checks.

* ``raster_window``: the spatial pattern of ``pixelcnn_mask``, from the raster-scan order
  (the positions whose raster index is below the centre's);
* ``expected_dependence``: what a conv2d with that mask sees, placed in an image.
"""
from __future__ import annotations

import torch


def raster_window(kernel_size: int, mask_type: str) -> torch.Tensor:
    """``[k, k]`` bool: window positions strictly before the centre in raster order (and the centre for 'B')."""
    c = kernel_size // 2
    index = torch.arange(kernel_size * kernel_size).reshape(kernel_size, kernel_size)
    centre = c * kernel_size + c
    return index < centre if mask_type == "A" else index <= centre


def expected_dependence(out_ch: int, in_ch: int, kernel_size: int, mask_type: str) -> torch.Tensor:
    """The dependence ``models.conv_dependence`` must find, ``[out, in, 2k+1, 2k+1]`` bool: the
    raster-earlier pixels of the ``k x k`` window around the centre of a ``(2k+1) x (2k+1)`` image."""
    size, k = 2 * kernel_size + 1, kernel_size
    full = torch.zeros(size, size, dtype=torch.bool)
    lo = size // 2 - k // 2
    full[lo:lo + k, lo:lo + k] = raster_window(k, mask_type)
    return full.expand(out_ch, in_ch, size, size)
