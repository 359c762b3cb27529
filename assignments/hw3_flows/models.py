"""Judge-side helpers for the hw3 checks: fixtures, masked networks, Gaussians, data.

No reference code here, and no implementation of a graded function (public
checks import this file, and students read it): these build the fixtures the
worker runs, evaluate networks built from the student's masks, test the
handout's degree rules on the student's masks, and compute densities that are
known in closed form (Gaussians). The PixelCNN mask's spatial pattern is a
graded function's value: it lives in closed_forms.py, which only the hidden
checks import.

The drawn cases (``MadeCase``, ``ConvCase``, ``CouplingCase``, ``FlowCase``)
are plain objects whose repr names every argument, so a counterexample reads
``MadeCase(in_features=3, hidden_sizes=[2], order=[2, 0, 1])``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import Fixture, StudentObject
from grader.worker.fixtures import mlp

F64 = torch.float64


# ---------------------------------------------------------------------- drawn cases (named in counterexamples)


class MadeCase:
    """``made_masks(in_features, hidden_sizes, order)`` arguments; ``order`` as passed (None, a list or a tensor)."""

    def __init__(self, in_features: int, hidden_sizes: list[int], order) -> None:
        self.in_features, self.hidden_sizes, self.order = in_features, list(hidden_sizes), order

    @property
    def order_tensor(self) -> torch.Tensor:
        """The ordering as a long tensor (the identity for ``order=None``)."""
        return torch.arange(self.in_features) if self.order is None else torch.as_tensor(self.order).long()

    def __repr__(self) -> str:
        return f"MadeCase(in_features={self.in_features}, hidden_sizes={self.hidden_sizes}, order={self.order!r})"


class ConvCase:
    """``pixelcnn_mask(out_channels, in_channels, kernel_size, mask_type)`` arguments."""

    def __init__(self, out_channels: int, in_channels: int, kernel_size: int, mask_type: str) -> None:
        self.out_channels, self.in_channels = out_channels, in_channels
        self.kernel_size, self.mask_type = kernel_size, mask_type

    @property
    def args(self) -> tuple[int, int, int, str]:
        return self.out_channels, self.in_channels, self.kernel_size, self.mask_type

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.out_channels, self.in_channels, self.kernel_size, self.kernel_size

    def __repr__(self) -> str:
        return (f"pixelcnn_mask(out_channels={self.out_channels}, in_channels={self.in_channels}, "
                f"kernel_size={self.kernel_size}, mask_type={self.mask_type!r})")


class CouplingCase:
    """``AffineCoupling(mask, net)`` applied to ``x``; ``net`` is a conditioner Fixture described by ``about``."""

    def __init__(self, mask: torch.Tensor, net: Fixture, x: torch.Tensor, about: str) -> None:
        self.mask, self.net, self.x, self.about = mask, net, x, about

    def __repr__(self) -> str:
        return f"CouplingCase(mask={self.mask!r}, net={self.about}, x={self.x!r})"


class FlowCase:
    """``flow_log_prob(layers, x)`` arguments: fixture layers (data -> latent) and ``x [B, D]``."""

    def __init__(self, layers: list[Fixture], x: torch.Tensor) -> None:
        self.layers, self.x = layers, x

    @property
    def kinds(self) -> str:
        return " -> ".join(layer.name for layer in self.layers)

    def __repr__(self) -> str:
        def layer(f: Fixture) -> str:
            weights = ", ".join(f"{k}={[round(v, 4) for v in w.double().flatten().tolist()]}"
                                for k, w in f.weights.items())
            return f"{f.name}({weights})"

        return f"FlowCase(layers=[{', '.join(layer(f) for f in self.layers)}], x={self.x!r})"


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


def degree_conflict(masks: list[torch.Tensor], order: torch.Tensor) -> list[str] | None:
    """None when some integer degree for every hidden unit makes every mask entry follow the
    handout's two rules; else the mask entries of one contradiction, one line each.

    The rules (handout, ``made_masks``): input ``j`` has degree ``order[j]``; a hidden unit
    of degree ``m`` sees a previous unit of degree ``m'`` iff ``m >= m'``; output ``i`` sees a
    hidden unit of degree ``m`` iff ``order[i] > m``. Each 0/1 entry is a difference
    constraint between two degrees (1: ``m >= m'``, 0: ``m <= m' - 1``), so degrees exist iff
    the constraint graph has no negative cycle (Bellman-Ford). Hidden degrees may be any
    integers here (the handout's range ``0 .. D - 2`` is not required: a unit of another
    degree is only dead weight), so the check asks no more than the connection rules.
    """
    d = len(order)
    sizes = [int(m.shape[0]) for m in masks[:-1]]
    # nodes: 0 = the constant 0; 1..d = inputs; then every hidden unit, layer by layer; then the d outputs
    starts = [1]
    for n in [d, *sizes]:
        starts.append(starts[-1] + n)
    n_nodes = starts[-1] + d
    weight = np.full((n_nodes, n_nodes), np.inf)  # weight[b, a] = w: degree(a) - degree(b) <= w
    degrees = order.long().numpy()
    fixed = np.concatenate([degrees, degrees - 1])  # outputs: "order[i] > m" is "order[i] - 1 >= m"
    fixed_nodes = np.concatenate([np.arange(1, 1 + d), np.arange(starts[-1], n_nodes)])
    weight[0, fixed_nodes] = fixed
    weight[fixed_nodes, 0] = -fixed
    layers = [(starts[i], starts[i + 1], m) for i, m in enumerate(masks)]
    for prev, out, mask in layers:
        on = mask.double().numpy() == 1
        rows, cols = np.indices(on.shape)
        weight[(rows + out)[on], (cols + prev)[on]] = 0.0  # degree(col) - degree(row) <= 0
        weight[(cols + prev)[~on], (rows + out)[~on]] = -1.0  # degree(row) - degree(col) <= -1
    dist = np.zeros(n_nodes)
    pred = np.full(n_nodes, -1)
    everything = np.arange(n_nodes)
    for _ in range(n_nodes + 1):  # Bellman-Ford from a virtual source at distance 0 to every node
        arg = (dist[:, None] + weight).argmin(0)
        best = dist[arg] + weight[arg, everything]
        changed = best < dist
        if not changed.any():
            return None
        dist = np.where(changed, best, dist)
        pred = np.where(changed, arg, pred)
    node = int(changed.nonzero()[0][0])
    for _ in range(n_nodes):  # walk back into the negative cycle
        node = int(pred[node])
        if node < 0:
            return ["(no integer degrees satisfy every entry)"]
    cycle, walk = [node], int(pred[node])
    while walk != node and len(cycle) <= n_nodes:
        cycle.append(walk)
        walk = int(pred[walk])
    cycle.reverse()  # edges cycle[i] -> cycle[i + 1]
    edges = [(b, a) for b, a in zip(cycle, cycle[1:] + cycle[:1]) if 0 not in (a, b)]  # fixed degrees: inline
    return [_describe_edge(b, a, starts, layers, order) for b, a in edges]


def _describe_edge(b: int, a: int, starts: list[int], layers: list, order: torch.Tensor) -> str:
    """The mask entry (or fixed degree) behind the constraint ``degree(a) - degree(b) <= w``."""
    def unit(node: int) -> str:
        if node < starts[1]:
            return f"input {node - 1}"
        if node >= starts[-1]:
            return f"output {node - starts[-1]}"
        layer = max(i for i, s in enumerate(starts) if s <= node)
        return f"unit {node - starts[layer]} of hidden layer {layer}"

    def degree(node: int) -> str:
        if node < starts[1]:
            return f"order[{node - 1}] = {int(order[node - 1])}"
        if node >= starts[-1]:
            return f"order[{node - starts[-1]}] = {int(order[node - starts[-1]])}"
        return f"deg({unit(node)})"

    for i, (prev, out, mask) in enumerate(layers):
        for row, col, entry in ((b, a, 1), (a, b, 0)):
            if out <= row < out + mask.shape[0] and prev <= col < prev + mask.shape[1]:
                k, j = row - out, col - prev
                sees = "sees" if entry else "does not see"
                if i == len(layers) - 1:
                    rule = (f"{degree(col)} < {degree(row)}" if entry else f"{degree(col)} >= {degree(row)}")
                else:
                    rule = (f"{degree(row)} >= {degree(col)}" if entry else f"{degree(row)} < {degree(col)}")
                return f"mask {i}[{k}, {j}] = {entry}: {unit(row)} {sees} {unit(col)}, so {rule}"
    return f"{unit(b)} -> {unit(a)}"  # pragma: no cover (every edge comes from an entry or a fixed degree)


# ---------------------------------------------------------------------- PixelCNN


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


def forbidden_pixels(size: int, mask_type: str) -> torch.Tensor:
    """``[size, size]`` bool over an image: the pixels its centre pixel must not see in a raster-scan
    autoregressive model (odd ``size``). Raster order reads rows top to bottom, each left to right,
    so these are the later pixels, in a lower row or in the same row to the right, and for
    ``'A'`` the centre itself. It is a statement about the image, not about a kernel window."""
    offset = torch.arange(size) - size // 2
    row, col = offset[:, None], offset[None, :]
    later = (row > 0) | ((row == 0) & (col > 0))
    itself = (row == 0) & (col == 0)
    return later | itself if mask_type == "A" else later


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
    from sklearn.datasets import make_moons  # here: importing scikit-learn takes seconds, and only training needs it

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
