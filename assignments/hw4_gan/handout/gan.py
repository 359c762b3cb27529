"""Homework 4: adversarial losses.

You will implement the training objectives of

* the original GAN (Goodfellow et al., 2014, "Generative Adversarial Nets",
  eq. 1), both the saturating minimax generator loss and the non-saturating
  heuristic of section 3;
* least-squares GANs (Mao et al., 2017, "Least Squares Generative Adversarial
  Networks", eq. 2 with a = 0, b = c = 1);
* Wasserstein GANs (Arjovsky, Chintala & Bottou, 2017, "Wasserstein GAN",
  eq. 3) and the gradient penalty of WGAN-GP (Gulrajani et al., 2017,
  "Improved Training of Wasserstein GANs", eq. 3 and Algorithm 1);
* the cycle-consistency loss of CycleGAN (Zhu, Park, Isola & Efros, 2017,
  "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
  Networks", eq. 2).

Minimax / non-saturating losses take discriminator *logits* ``l`` with
``D(x) = sigmoid(l)``; the other losses take raw critic outputs. Every loss
takes batches shaped ``[B]`` or ``[B, 1]`` (the real and the fake batch may
have different sizes) and returns a scalar (0-dim tensor) built from means
over the batch, so ``E`` below is a mean over all elements of its batch.

Stability: never compute ``log(sigmoid(l))`` or ``log(1 - sigmoid(l))``
directly; use ``F.logsigmoid(l)`` and ``log(1 - sigmoid(l)) = logsigmoid(-l)``
so that values and gradients stay finite for logits up to |100|.

Inputs come in float32 or float64: keep the dtype and device of the inputs,
never modify an input in place, and keep everything differentiable (no
``.item()``, ``.detach()`` or numpy round trips): the checks compare
gradients with respect to the inputs, the critic's and the maps' parameters.
"""

# How to check your work before you submit (the public checks; nothing is sent
# anywhere), with the course's student bundle (pip install
# dgm_grade_student_hw4_gan-*.whl):
#
# - in a notebook (Jupyter, Colab), in a new cell: from dgm_grade.hw4_gan import check;
#   check() (or check("function_name")): it checks the functions as your kernel defines
#   them now;
# - in a terminal: dgm-check-hw4-gan gan.py (or gan.ipynb).
#
# What is graded: the functions below. The public checks (27 points) are the ones you
# can see and run; hidden checks, which compare with the solution, grade the other 27
# points after you submit.

from __future__ import annotations
import torch
import torch.nn.functional as F


def d_loss_minimax(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of the original GAN.

    ``-E log D(x) - E log(1 - D(G(z)))`` with ``D = sigmoid(logits)``, each
    expectation a mean over its batch.

    Args:
        real_logits: ``[B]`` (or ``[B, 1]``) logits on real data.
        fake_logits: ``[B']`` (or ``[B', 1]``) logits on generated data.

    Returns:
        scalar.
    """
    raise NotImplementedError  # TODO: your implementation


def g_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """Saturating (minimax) generator loss: ``E log(1 - D(G(z)))``.

    Args:
        fake_logits: ``[B]`` (or ``[B, 1]``) logits on generated data.

    Returns:
        scalar (the generator minimises it).
    """
    raise NotImplementedError  # TODO: your implementation


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: ``-E log D(G(z))``.

    Args:
        fake_logits: ``[B]`` (or ``[B, 1]``) logits on generated data.

    Returns:
        scalar.
    """
    raise NotImplementedError  # TODO: your implementation


def d_loss_lsgan(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss.

    ``0.5 E (D(x) - 1)^2 + 0.5 E D(G(z))^2`` on raw outputs.

    Args:
        real_out: ``[B]`` (or ``[B, 1]``) outputs on real data.
        fake_out: ``[B']`` (or ``[B', 1]``) outputs on generated data.

    Returns:
        scalar.
    """
    raise NotImplementedError  # TODO: your implementation


def g_loss_lsgan(fake_out: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss: ``0.5 E (D(G(z)) - 1)^2``.

    Args:
        fake_out: ``[B]`` (or ``[B, 1]``) outputs on generated data.

    Returns:
        scalar.
    """
    raise NotImplementedError  # TODO: your implementation


def d_loss_wgan(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Wasserstein critic loss: ``E D(G(z)) - E D(x)``.

    Args:
        real_out: ``[B]`` (or ``[B, 1]``) critic outputs on real data.
        fake_out: ``[B']`` (or ``[B', 1]``) critic outputs on generated data.

    Returns:
        scalar (the critic minimises it).
    """
    raise NotImplementedError  # TODO: your implementation


def g_loss_wgan(fake_out: torch.Tensor) -> torch.Tensor:
    """Wasserstein generator loss: ``-E D(G(z))``.

    Args:
        fake_out: ``[B]`` (or ``[B, 1]``) critic outputs on generated data.

    Returns:
        scalar.
    """
    raise NotImplementedError  # TODO: your implementation


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3).

    ::

        x_hat   = alpha * real + (1 - alpha) * fake      (alpha broadcast over non-batch dims)
        penalty = mean_b ( || d critic(x_hat)_b / d x_hat_b ||_2 - 1 )^2

    The norm is taken over all non-batch dims of each example's gradient
    (real and fake are vectors ``[B, D]`` or images ``[B, C, H, W]``).
    Use ``torch.autograd.grad`` with ``create_graph=True`` so the penalty
    itself can be backpropagated into the critic's parameters. ``x_hat``
    must require grad (``real``/``fake`` may not). The critic returns ``[B]``
    or ``[B, 1]``; since example ``b``'s output depends only on ``x_hat_b``,
    the gradient of ``critic(x_hat).sum()`` gives every per-example gradient
    at once. The checks keep every gradient norm at ``x_hat`` at least 1e-2,
    so an epsilon up to 1e-12 inside the square root is fine. Gradients with
    respect to ``real``, ``fake`` and ``alpha`` are not checked.

    Args:
        critic: callable ``[B, ...] -> [B]`` or ``[B, 1]``, in the dtype of
            ``real`` (call it on ``x_hat`` in that dtype).
        real: ``[B, ...]`` real data.
        fake: ``[B, ...]`` generated data, same shape.
        alpha: ``[B]`` interpolation weights in [0, 1], in the dtype of ``real``.

    Returns:
        scalar, differentiable in the critic's parameters.
    """
    raise NotImplementedError  # TODO: your implementation


def cycle_consistency_loss(x: torch.Tensor, y: torch.Tensor, G, F) -> torch.Tensor:
    """CycleGAN cycle-consistency loss (Zhu et al. 2017, eq. 2).

    ``mean |F(G(x)) - x| + mean |G(F(y)) - y|``, each mean over all elements.

    Args:
        x: ``[B, ..., D_x]`` samples from domain X.
        y: ``[B', ..., D_y]`` samples from domain Y (batch sizes, leading dims
            and event sizes may differ from ``x``'s).
        G: callable mapping X -> Y (on the last dim, any leading dims).
        F: callable mapping Y -> X (this argument shadows
            ``torch.nn.functional`` inside this function; that is fine).

    Returns:
        scalar, differentiable in the parameters of ``G`` and ``F``.
    """
    raise NotImplementedError  # TODO: your implementation
