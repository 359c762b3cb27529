"""grader/verify.py: expect_derivative on functions the judge evaluates itself (no worker)."""
from __future__ import annotations

import math
from typing import Callable

import pytest
import torch

from grader import verify
from grader.compare import CheckFailed
from grader.verify import expect_derivative

F64 = torch.float64
Fn = Callable[[torch.Tensor], torch.Tensor]


def curved(x: torch.Tensor) -> torch.Tensor:
    """[N] -> [N], values of order 1."""
    return -0.5 * (x**2 + x.exp())


def linear(x: torch.Tensor) -> torch.Tensor:
    """[N] -> [N]: the log-density of N(0, exp(x)) at 0, as a function of the log-variance."""
    return -0.5 * (math.log(2 * math.pi) + x)


class Reply:
    """What ``student.call`` returns: the value, and gradients by the identity of the inputs."""

    def __init__(self, value: torch.Tensor, grads: dict[int, torch.Tensor] | None = None) -> None:
        self.value, self.grads = value, grads or {}

    def grad(self, obj: torch.Tensor) -> torch.Tensor | None:
        return self.grads.get(id(obj))


class Student:
    """A student whose every function is ``fn``, called in the judge; ``seed`` moves the direction."""

    def __init__(self, fn: Fn, seed: int = 0) -> None:
        self.fn, self.seed = fn, seed

    def _call_seed(self, offset: int) -> int:
        return offset + self.seed

    def call(self, name: str, *args, seed_offset: int = 0, default_dtype=None, **kwargs) -> Reply:
        return Reply(self.fn(*args))


def gradient_reply(fn: Fn, x: torch.Tensor, cotangent: torch.Tensor, forged: Fn | None = None) -> Reply:
    """``fn``'s value at ``x``, with the gradient of <cotangent, forged or fn> at ``x``."""
    leaf = x.clone().requires_grad_()
    ((forged or fn)(leaf) * cotangent).sum().backward()
    return Reply(fn(x), {id(x): leaf.grad})


X = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
COTANGENT = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
SUBNORMAL = 2.2251e-313  # hypothesis draws cotangents like this one


@pytest.mark.parametrize("fn", [curved, linear])
@pytest.mark.parametrize("scale", [1.0, 1e-300, SUBNORMAL])
def test_the_true_gradient_passes(fn, scale):
    cotangent = scale * COTANGENT
    for seed in range(10):
        expect_derivative(Student(fn, seed), "f", (X,), gradient_reply(fn, X, cotangent), X, cotangent=cotangent)


def test_a_subnormal_cotangent_needs_the_floor(monkeypatch):
    """Without the floor for subnormal products, the true gradient of a linear function fails in some
    directions: c (y(x + h v) - y(x - h v)) keeps only about 5 digits when c is 2e-313."""
    monkeypatch.setattr(verify, "SUBNORMAL_SPACING", 0.0)
    x, cotangent = torch.zeros(1, dtype=F64), torch.tensor([SUBNORMAL], dtype=F64)
    failures = 0
    for seed in range(10):
        try:
            expect_derivative(Student(linear, seed), "f", (x,), gradient_reply(linear, x, cotangent), x,
                              cotangent=cotangent)
        except CheckFailed:
            failures += 1
    assert failures > 0


@pytest.mark.parametrize("scale", [1.0, SUBNORMAL])
def test_a_detached_term_fails(scale):
    cotangent = scale * COTANGENT
    reply = gradient_reply(curved, X, cotangent, forged=lambda x: -0.5 * (x**2 + x.detach().exp()))
    with pytest.raises(CheckFailed, match="does not match how f's value changes"):
        expect_derivative(Student(curved), "f", (X,), reply, X, cotangent=cotangent)


def test_hw5_gradient_directions_come_from_the_keyed_call_seed():
    """hw5's expect_gradients_match_values moves each input along a direction from the judge's keyed
    call seed (it was a fixed, public seed): a gradient forged to agree along one seed's direction
    (the true one plus a part orthogonal to it) passes under that seed only."""
    from assignments.hw5_diffusion.models import DIRECTION_SEED, expect_gradients_match_values

    def double(x: torch.Tensor) -> torch.Tensor:
        return 2.0 * x

    def direction(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(Student(double, seed)._call_seed(DIRECTION_SEED) % 2**63)
        return torch.randn(X.shape, generator=gen, dtype=F64)

    d = direction(0)
    off = torch.ones_like(X) - (torch.ones_like(X) @ d) / (d @ d) * d  # orthogonal to d
    forged = Reply(double(X), {id(X): 2.0 * COTANGENT + 5.0 * off})
    expect_gradients_match_values(Student(double, 0), "f", {"x": X}, forged, COTANGENT, ("x",), what="y")
    for seed in range(1, 6):
        with pytest.raises(CheckFailed, match="disagrees"):
            expect_gradients_match_values(Student(double, seed), "f", {"x": X}, forged, COTANGENT, ("x",), what="y")
