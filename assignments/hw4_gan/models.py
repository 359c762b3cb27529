"""Judge-side helpers for the hw4 checks: the handout's sentences, critics, maps, discrete distributions.

No reference code here, and no implementation of a graded function (students
read this file): the helpers build critics and maps whose input gradients or
compositions are known in closed form, distributions whose divergences the
checks compare with, and the handout text the failure messages quote. Each
fixture helper returns the Fixture the worker builds and, where a check needs
it, the same module built here (float64).
"""
from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from grader.checks import Fixture
from grader.strategies import dtypes, tensors
from grader.worker.fixtures import build
from grader.worker.fixtures.gan import MLPCritic, MLPMap

# ---------------------------------------------------------------------- the handout, quoted in failure messages

HANDOUT = {  # function -> its definition as the handout (reference/gan.py's docstrings) states it
    "d_loss_minimax": "-E log D(x) - E log(1 - D(G(z))) with D = sigmoid(logits), each expectation a mean over "
                      "its batch",
    "g_loss_minimax": "E log(1 - D(G(z)))",
    "g_loss_nonsaturating": "-E log D(G(z))",
    "d_loss_lsgan": "0.5 E (D(x) - 1)^2 + 0.5 E D(G(z))^2 on raw outputs",
    "g_loss_lsgan": "0.5 E (D(G(z)) - 1)^2",
    "d_loss_wgan": "E D(G(z)) - E D(x)",
    "g_loss_wgan": "-E D(G(z))",
    "gradient_penalty": "x_hat = alpha * real + (1 - alpha) * fake (alpha broadcast over non-batch dims); "
                        "penalty = mean_b ( || d critic(x_hat)_b / d x_hat_b ||_2 - 1 )^2, the norm over all "
                        "non-batch dims",
    "cycle_consistency_loss": "mean |F(G(x)) - x| + mean |G(F(y)) - y|, each mean over all elements",
}
BATCHES = ('the handout: "Every loss takes batches shaped [B] or [B, 1] (the real and the fake batch may have '
           'different sizes) and returns a scalar (0-dim tensor) built from means over the batch"')
STABILITY = ('the handout: "use F.logsigmoid(l) and log(1 - sigmoid(l)) = logsigmoid(-l) so that values and '
             'gradients stay finite for logits up to |100|"')
DIFFERENTIABLE = ('the handout: "keep everything differentiable (no .item(), .detach() or numpy round trips)"')
CREATE_GRAPH = ('the handout: "Use torch.autograd.grad with create_graph=True so the penalty itself can be '
                'backpropagated into the critic\'s parameters"')


def handout(fn: str) -> str:
    """``the handout: fn = "..."``: the sentence a check's property follows from."""
    return f'the handout: {fn} = "{HANDOUT[fn]}"'


ARGUMENTS = {  # loss -> its arguments' names, in order
    "d_loss_minimax": ("real_logits", "fake_logits"),
    "g_loss_minimax": ("fake_logits",),
    "g_loss_nonsaturating": ("fake_logits",),
    "d_loss_lsgan": ("real_out", "fake_out"),
    "g_loss_lsgan": ("fake_out",),
    "d_loss_wgan": ("real_out", "fake_out"),
    "g_loss_wgan": ("fake_out",),
}
LOSSES = tuple(ARGUMENTS)


def value_tolerance(dtype: torch.dtype) -> float:
    """Absolute slack: float32 loses ~1e-7 relative on terms as large as 100."""
    return 1e-4 if dtype == torch.float32 else 1e-9


def grad_tolerance(dtype: torch.dtype) -> float:
    return 1e-6 if dtype == torch.float32 else 1e-12


# ---------------------------------------------------------------------- drawing inputs, each under its own name


@st.composite
def batch(draw, dtype: torch.dtype, column: bool, *, low: float = -100.0, high: float = 100.0,
          max_size: int = 8) -> torch.Tensor:
    """One batch of logits / critic outputs: [B] or [B, 1], values in [low, high]."""
    size = draw(st.integers(1, max_size))
    return draw(tensors((size, 1) if column else (size,), dtype, low=low, high=high))


def draw_loss_inputs(data, fn: str, *, low: float = -100.0, high: float = 100.0,
                     max_size: int = 8) -> dict[str, torch.Tensor]:
    """The arguments of a loss, each drawn under its handout name (batch sizes drawn apart)."""
    dtype = data.draw(dtypes(), label="dtype")
    column = data.draw(st.booleans(), label="batches shaped [B, 1] (else [B])")
    return {name: data.draw(batch(dtype, column, low=low, high=high, max_size=max_size), label=name)
            for name in ARGUMENTS[fn]}


def draw_distributions(data) -> tuple[list[int], list[int], int]:
    """Two distributions p, q over K support points, as counts (every point in both), and a shuffle seed."""
    k = data.draw(st.integers(2, 5), label="support points K")
    counts = st.lists(st.integers(1, 6), min_size=k, max_size=k)
    counts_p = data.draw(counts, label="counts_p (copies of each point in the real batch)")
    counts_q = data.draw(counts, label="counts_q (copies of each point in the fake batch)")
    return counts_p, counts_q, data.draw(st.integers(0, 2**16), label="shuffle_seed")


def linear_critic(weight: torch.Tensor, bias: float, dtype: torch.dtype, keepdim: bool) -> Fixture:
    """c(x) = <weight, x> + bias over all non-batch dims; its input gradient is ``weight``."""
    weights = {"weight": weight.to(dtype), "bias": torch.tensor(float(bias), dtype=dtype)}
    return Fixture("linear_critic", {"keepdim": keepdim}, weights)


def quadratic_critic(scale: torch.Tensor, center: torch.Tensor, dtype: torch.dtype, keepdim: bool) -> Fixture:
    """c(x) = 0.5 sum scale (x - center)^2; its input gradient is scale (x - center)."""
    return Fixture("quadratic_critic", {"keepdim": keepdim}, {"scale": scale.to(dtype), "center": center.to(dtype)})


def mlp_critic(event_shape: tuple[int, ...], hidden: list[int], dtype: torch.dtype, keepdim: bool,
               generator: torch.Generator) -> tuple[Fixture, torch.nn.Module]:
    """A random tanh-MLP critic as a Fixture, and the same critic built here in float64."""
    params = {"event_shape": list(event_shape), "hidden": hidden, "keepdim": keepdim}
    shapes = {k: v.shape for k, v in MLPCritic(event_shape, hidden, keepdim).state_dict().items()}
    weights = {k: torch.randn(s, generator=generator, dtype=torch.float64) for k, s in shapes.items()}
    module = build("mlp_critic", params, weights)
    return Fixture("mlp_critic", params, {k: v.to(dtype) for k, v in weights.items()}), module


def linear_map(weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype) -> tuple[Fixture, torch.nn.Module]:
    """y = x @ weight.T + bias on the last dim, as a Fixture and built here (float64)."""
    weights = {"weight": weight.double(), "bias": bias.double()}
    return (Fixture("linear_map", {}, {k: v.to(dtype) for k, v in weights.items()}),
            build("linear_map", {}, weights))


def invertible_pair(d: int, dtype: torch.dtype, generator: torch.Generator) -> tuple[Fixture, Fixture]:
    """(G, F) linear maps on R^d with F = G^{-1}: G(x) = x Q diag(s) + b, s in [0.5, 2]."""
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    s = 0.5 + 1.5 * torch.rand(d, generator=generator, dtype=torch.float64)
    b = torch.randn(d, generator=generator, dtype=torch.float64)
    w = q * s  # columns of q scaled: w = q diag(s)
    w_inv = torch.linalg.inv(w)
    g, _ = linear_map(w, b, dtype)
    f, _ = linear_map(w_inv, -w_inv @ b, dtype)
    return g, f


def mlp_map(n_in: int, n_out: int, hidden: list[int], dtype: torch.dtype,
            generator: torch.Generator) -> tuple[Fixture, torch.nn.Module]:
    """A random tanh-MLP map on the last dim as a Fixture, and built here in float64."""
    params = {"n_in": n_in, "n_out": n_out, "hidden": hidden}
    shapes = {k: v.shape for k, v in MLPMap(n_in, n_out, hidden).state_dict().items()}
    weights = {k: torch.randn(s, generator=generator, dtype=torch.float64) for k, s in shapes.items()}
    return Fixture("mlp_map", params, {k: v.to(dtype) for k, v in weights.items()}), build("mlp_map", params, weights)


def kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p || q) = sum_k p_k log(p_k / q_k) for strictly positive p, q."""
    return float((p * (p / q).log()).sum())


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> float:
    """JSD(p, q) = 0.5 KL(p || m) + 0.5 KL(q || m), m = (p + q) / 2, for strictly positive p, q."""
    m = 0.5 * (p + q)
    return float(0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum())


def batches_with_distributions(counts_p: list[int], counts_q: list[int], generator: torch.Generator
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                          torch.Tensor, torch.Tensor]:
    """A support of K points and two batches whose empirical distributions are exactly p and q.

    Point k appears counts_p[k] times in the real batch and counts_q[k] times in
    the fake batch (each shuffled). Returns (p, q, real_index, fake_index,
    optimal_logits, optimal_d): ``real_index`` / ``fake_index`` say which support
    point each batch entry is; ``optimal_logits[k] = log p_k - log q_k``, the logit
    of the optimal discriminator D*_k = p_k / (p_k + q_k).
    """
    cp = torch.tensor(counts_p, dtype=torch.float64)
    cq = torch.tensor(counts_q, dtype=torch.float64)
    p, q = cp / cp.sum(), cq / cq.sum()
    k = torch.arange(len(counts_p))
    real_index = k.repeat_interleave(torch.tensor(counts_p))
    fake_index = k.repeat_interleave(torch.tensor(counts_q))
    real_index = real_index[torch.randperm(len(real_index), generator=generator)]
    fake_index = fake_index[torch.randperm(len(fake_index), generator=generator)]
    return p, q, real_index, fake_index, p.log() - q.log(), p / (p + q)


LOG4 = math.log(4.0)


def translation_pair(d: int, dtype: torch.dtype, generator: torch.Generator) -> dict:
    """Affine maps on R^d whose cycles are translations: F(G(x)) = x + delta and G(F(y)) = y + W delta.

    G(x) = x W^T + b with W = Q diag(s) invertible (s in [0.5, 2]); F(y) = y A^T + c with A = W^{-1} and
    c = delta - A b. Every |delta_i| and |(W delta)_i| is at least 0.2, so the signs of both residuals are
    robust to float32 rounding. Returns the fixtures ``G`` and ``F`` and the float64 ``W``, ``b``, ``A``,
    ``c``, ``delta`` and ``epsilon = W delta``.
    """
    while True:
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
        w = q * (0.5 + 1.5 * torch.rand(d, generator=generator, dtype=torch.float64))
        sign = torch.randint(0, 2, (d,), generator=generator).double() * 2 - 1
        delta = sign * (0.3 + 0.7 * torch.rand(d, generator=generator, dtype=torch.float64))
        if float((w @ delta).abs().min()) >= 0.2:
            break
    b = torch.randn(d, generator=generator, dtype=torch.float64)
    a = torch.linalg.inv(w)
    c = delta - a @ b
    g, _ = linear_map(w, b, dtype)
    f, _ = linear_map(a, c, dtype)
    return {"G": g, "F": f, "W": w, "b": b, "A": a, "c": c, "delta": delta, "epsilon": w @ delta}


IN_PLACE = 'the handout: "never modify an input in place"'


def expect_untouched(result, **inputs: torch.Tensor) -> None:
    """Each named input is as it was after the call (``student.call(..., return_inputs=True)``)."""
    from grader.compare import expect

    for name, t in inputs.items():
        after = result.input_after(t)
        expect(after is not None and torch.equal(after, t),
               f"{name} (shape {list(t.shape)}) was modified in place; compute on copies (x = x + 1, not x += 1; "
               f"{IN_PLACE})")
