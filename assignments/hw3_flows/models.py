"""Judge-side helpers for the hw3 checks: fixtures, masked networks, Gaussians, data.

No reference code here (public checks import this file): these build the
fixtures the worker runs, evaluate networks built from the student's masks,
and compute densities that are known in closed form (Gaussians).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import make_moons

from grader.checks import Fixture, StudentObject
from grader.worker.fixtures import build, mlp

F64 = torch.float64


# ---------------------------------------------------------------------- MADE


def mask_product(masks: list[torch.Tensor]) -> torch.Tensor:
    """Number of input -> output paths through the masks: ``[D_out, D_in]`` (float64)."""
    prod = masks[0].double()
    for m in masks[1:]:
        prod = m.double() @ prod
    return prod


def made_jacobian(masks: list[torch.Tensor], x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Autograd Jacobian ``d out_i / d in_j`` ``[D, D]`` of an MLP (tanh, random weights) whose
    linear layers are multiplied by ``masks``, at the point ``x[D]`` (float64)."""
    weights = [(torch.rand(m.shape, generator=generator, dtype=F64) + 0.5)
               * torch.where(torch.rand(m.shape, generator=generator) < 0.5, -1.0, 1.0).double()
               for m in masks]
    biases = [torch.randn(m.shape[0], generator=generator, dtype=F64) * 0.3 for m in masks]

    def net(v: torch.Tensor) -> torch.Tensor:
        for i, (w, b, m) in enumerate(zip(weights, biases, masks)):
            v = F.linear(v, w * m.double(), b)
            if i < len(masks) - 1:
                v = torch.tanh(v)
        return v

    return torch.autograd.functional.jacobian(net, x.double())


# ---------------------------------------------------------------------- PixelCNN


def raster_window(kernel_size: int, mask_type: str) -> torch.Tensor:
    """``[k, k]`` bool: window positions strictly before the centre in raster order (and the centre for 'B')."""
    c = kernel_size // 2
    index = torch.arange(kernel_size * kernel_size).reshape(kernel_size, kernel_size)
    centre = c * kernel_size + c
    return index < centre if mask_type == "A" else index <= centre


def conv_dependence(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each (output channel o, input channel i): which input pixels the output pixel at the
    centre of a ``(2k+1) x (2k+1)`` image depends on, through ``conv2d(img, w * mask)`` with
    random positive weights. Returns bool ``[out, in, 2k+1, 2k+1]`` (by autograd)."""
    out_ch, in_ch, k, _ = mask.shape
    size = 2 * k + 1
    weight = (torch.rand(mask.shape, generator=generator, dtype=F64) + 0.5) * mask.double()
    img = torch.randn(1, in_ch, size, size, generator=generator, dtype=F64, requires_grad=True)
    out = F.conv2d(img, weight, padding=k // 2)
    deps = []
    for o in range(out_ch):
        (g,) = torch.autograd.grad(out[0, o, size // 2, size // 2], img, retain_graph=True)
        deps.append(g[0] != 0)
    return torch.stack(deps)


def expected_dependence(out_ch: int, in_ch: int, kernel_size: int, mask_type: str) -> torch.Tensor:
    """The dependence ``conv_dependence`` must find: the raster-earlier pixels of the window."""
    size, k = 2 * kernel_size + 1, kernel_size
    full = torch.zeros(size, size, dtype=torch.bool)
    lo = size // 2 - k // 2
    full[lo:lo + k, lo:lo + k] = raster_window(k, mask_type)
    return full.expand(out_ch, in_ch, size, size)


# ---------------------------------------------------------------------- coupling layers


def conditioner(dim: int, hidden: list[int], dtype: torch.dtype, generator: torch.Generator,
                scale: float = 0.8, activation: str = "tanh") -> tuple[Fixture, torch.nn.Module]:
    """A random MLP ``[B, dim] -> [B, 2 dim]`` as a Fixture, and the same network built here."""
    sizes = [dim, *hidden, 2 * dim]
    net = mlp(sizes, activation).to(F64)
    weights = {k: (scale * torch.randn(v.shape, generator=generator, dtype=F64)).to(dtype)
               for k, v in net.state_dict().items()}
    net = net.to(dtype)
    net.load_state_dict(weights)
    return Fixture("mlp_net", {"sizes": sizes, "activation": activation}, weights), net


def constant_conditioner(s0: torch.Tensor, t0: torch.Tensor) -> Fixture:
    """A conditioner that ignores its input: ``net(x) = [s0, t0]`` for every row."""
    d = s0.numel()
    weights = {"0.weight": torch.zeros(2 * d, d, dtype=s0.dtype), "0.bias": torch.cat([s0, t0])}
    return Fixture("mlp_net", {"sizes": [d, 2 * d]}, weights)


def coupling_definition(mask: torch.Tensor, net: Fixture, x: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor,
                                                                                    torch.Tensor]:
    """The handout's coupling in float64 with the conditioner built here: (net, y [B, D], log_det [B]).

    s, t = net(x * mask).chunk(2, -1); s = tanh(s); y = mask x + (1 - mask)(x exp(s) + t);
    log_det = sum_d (1 - mask_d) s_d.
    """
    module = build(net.name, net.params, {k: v.to(F64) for k, v in net.weights.items()})
    mask, x = mask.to(F64), x.to(F64)
    s, t = module(x * mask).chunk(2, dim=-1)
    s = torch.tanh(s)
    return module, mask * x + (1 - mask) * (x * torch.exp(s) + t), ((1 - mask) * s).sum(-1)


def coupling(mask: torch.Tensor, net: Fixture) -> StudentObject:
    """The student's ``AffineCoupling(mask, net)``, built in the worker."""
    return StudentObject("AffineCoupling", args=(mask, net))


# ---------------------------------------------------------------------- flow layers with known densities


def affine_layer(shift: torch.Tensor, log_scale: torch.Tensor) -> Fixture:
    """``y = (x - shift) * exp(-log_scale)``."""
    return Fixture("affine_flow", {"dim": shift.numel()}, {"shift": shift, "log_scale": log_scale})


def linear_layer(weight: torch.Tensor, bias: torch.Tensor) -> Fixture:
    """``y = x @ weight.T + bias``."""
    return Fixture("linear_flow", {"dim": bias.numel()}, {"weight": weight, "bias": bias})


def tanh_layer(a: torch.Tensor) -> Fixture:
    """``y = x + a * tanh(x)``, ``a > -1``."""
    return Fixture("tanh_flow", {"dim": a.numel()}, {"a": a})


def affine_map(layers: list[Fixture], weights: list[dict] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For a chain of affine/linear layers (applied in order), ``(A, c)`` with ``z = A x + c`` (float64).

    weights: per layer, tensors to use instead of the fixtures' own (e.g. leaves that require grad).
    """
    d = int(layers[0].params["dim"])
    a, c = torch.eye(d, dtype=F64), torch.zeros(d, dtype=F64)
    for i, layer in enumerate(layers):
        w = {k: v.double() for k, v in (layer.weights if weights is None else weights[i]).items()}
        if layer.name == "affine_flow":
            step_a, step_c = torch.diag(torch.exp(-w["log_scale"])), -torch.exp(-w["log_scale"]) * w["shift"]
        elif layer.name == "linear_flow":
            step_a, step_c = w["weight"], w["bias"]
        else:
            raise ValueError(f"{layer.name} is not affine")
        a, c = step_a @ a, step_a @ c + step_c
    return a, c


def gaussian_of(layers: list[Fixture], weights: list[dict] | None = None) -> torch.distributions.MultivariateNormal:
    """The data density of a flow ``z = A x + c`` with ``z ~ N(0, I)``: ``x ~ N(-A^{-1} c, (A^T A)^{-1})``."""
    a, c = affine_map(layers, weights)
    return torch.distributions.MultivariateNormal(-torch.linalg.solve(a, c), precision_matrix=a.T @ a)


def random_orthogonal(d: int, generator: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=F64))
    return q * torch.sign(torch.diagonal(r))


# ---------------------------------------------------------------------- data


def moons(n: int, seed: int) -> torch.Tensor:
    """Two moons (noise 0.05), standardised with fixed constants: ``[n, 2]`` float64."""
    x, _ = make_moons(n_samples=n, noise=0.05, random_state=seed)
    x = (x - np.array([0.5, 0.25])) / np.array([0.87, 0.5])
    return torch.from_numpy(x).to(F64)


def trapezoid_weights(grid: torch.Tensor) -> torch.Tensor:
    """Trapezoid-rule weights for a uniform 1-D grid."""
    h = float(grid[1] - grid[0])
    w = torch.full_like(grid, h)
    w[0] = w[-1] = h / 2
    return w


LOG_2PI = math.log(2 * math.pi)
