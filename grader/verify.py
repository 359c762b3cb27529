"""Judge-side verification of what the worker reports about a call beyond its result.

A gradient comes from autograd in the worker, and student code owns the worker:
it can patch the runtime and report any gradient it likes. ``expect_derivative``
checks a reported gradient against a central finite difference of the function's
own values, from two plain calls the judge makes itself, so a gradient that
passes is the derivative of what the code computes (see docs/security.md for
what a worker can still forge). Input mutation is verified by
``compare.expect_unchanged`` (a second call on the same objects).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .compare import describe, differs, expect, tolerance
from .worker.protocol import Fixture, StudentObject

STEP = 1e-6  # h: the step along the direction, relative to each entry's size (1 + |x_i|)
# Rounding of one float64 value of the function: 1e-13 relative to |y| + 1 (a condition factor of up
# to ~500 for the sums and cancellations in a loss; the 1 covers values that cancel to about 0, such as
# KL(q || q), whose terms are of order 1). The extrapolated difference divides it by about h: an
# absolute slack near 1e-7 per unit of cotangent, far below the O(1) error of a detached or forged path.
VALUE_ROUNDING = 1e-13
# Truncation: the extrapolated difference (4 D(h) - D(2h)) / 3 of the central differences D(h) and
# D(2h) has no h^2 term; its error is bounded by |D(h) - D(2h)| (which is 3/4 of D(h)'s h^2 term and
# many times the rest) for any function smooth at the scale of the step, however sharply curved, plus
# 1e-6 relative for the step's own rounding (x + h v is rounded to float64: 1e-16 / 1e-6 of the step).
DIFFERENCE_RTOL = 1e-6
# Subnormal floats: below 2.2e-308 float64 keeps only an absolute spacing of 2^-1074 (5e-324), so the
# products with a tiny cotangent (hypothesis draws values like 2e-313) lose their relative precision.
# Each rounds by at most that much; a budget of 1e3 roundings per entry, divided by h, is still about
# 5e-312, no slack at all for cotangents of normal size.
SUBNORMAL_SPACING = 2.0**-1074


def expect_derivative(student: Any, fn: str, args: tuple, result: Any, wrt: Any, *, kwargs: dict | None = None,
                      output: tuple[int, ...] = (), cotangent: torch.Tensor | None = None, seed_offset: int = 0,
                      default_dtype: torch.dtype | None = None, what: str = "the gradient") -> None:
    """The gradients ``result`` (a ``student.call(fn, *args, wrt=..., ...)`` reply) holds for ``wrt``
    (a float64 tensor or a Fixture with float64 weights among ``args``/``kwargs``, or a tuple of them,
    verified together along one direction) are the derivative of ``fn``'s values.

    With g the reported gradient of <cotangent, output> (None counts as zero), a random direction v
    (entries N(0, 1) times 1 + |x_i|, from a judge-side seed the worker never sees before the gradient
    is reported) and F(s) = <cotangent, output(x + s v)>, the judge calls ``fn`` four times without
    gradients, at x ± h v and x ± 2h v, with the same seed as the gradient call (the same draws of any
    noise inside), and once at x: a function whose values differ from the gradient call's there (one
    drawing from its own random generator) is not reproducible, and its gradient is not verified. With D(h) = (F(h) - F(-h)) / 2h it requires, for R = (4 D(h) - D(2h)) / 3,

        |<g, v> - R| <= rtol(g) sum |g_i v_i| + 1e-6 |R| + |D(h) - D(2h)| + 1e-13 sum_s sum_j |c_j| (|y_s,j| + 1) / h:

    the gradient's own rounding (its dtype's tolerance), the difference's truncation and the rounding
    of the four values (see the constants above), plus a floor for subnormal products (a tiny
    cotangent). A forged gradient passes only where it agrees with the values the code returns (in that
    direction, which it cannot know when it reports).

    Pass the same ``args``, ``kwargs``, ``output``, ``cotangent``, ``seed_offset`` and ``default_dtype``
    as the gradient call; extra positional and keyword arguments must be the same objects.
    """
    kwargs = dict(kwargs or {})
    gen = torch.Generator().manual_seed(student._call_seed(seed_offset + 0x5EED_D1F0) % 2**63)
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (reported gradient, direction)
    moves: list[tuple[Any, Any]] = []  # (object, its direction: a tensor, or a dict for a Fixture)
    for obj in wrt if isinstance(wrt, tuple) else (wrt,):
        reported = result.grad(obj)
        if isinstance(obj, Fixture):
            reported = reported if isinstance(reported, dict) else {}
            names = [k for k, w in obj.weights.items() if isinstance(w, torch.Tensor) and w.is_floating_point()
                     and (k in reported or not reported)]
            direction = {k: _direction(obj.weights[k], gen, f"{what}: weight {k}") for k in names}
            pairs += [(_as_grad(reported.get(k), obj.weights[k], f"{what} ({k})"), direction[k]) for k in names]
            moves.append((obj, direction))
        elif isinstance(obj, torch.Tensor):
            v = _direction(obj, gen, what)
            pairs.append((_as_grad(reported, obj, what), v))
            moves.append((obj, v))
        else:
            raise TypeError(f"expect_derivative: wrt must hold tensors and Fixtures, not {type(obj).__name__}")

    values = {}
    for scale in (0.0, 1.0, -1.0, 2.0, -2.0):  # x + s h v (s = 0: is the function reproducible at all?)
        swap = {id(obj): _moved(obj, step, scale) for obj, step in moves}
        a = tuple(_replace(x, swap) for x in args)
        kw = {k: _replace(x, swap) for k, x in kwargs.items()}
        value = student.call(fn, *a, seed_offset=seed_offset, default_dtype=default_dtype, **kw).value
        for index in output:
            expect(isinstance(value, (tuple, list)) and -len(value) <= index < len(value),
                   f"{what}: {fn} returned {describe(value)} at a nearby input, where output {list(output)} was "
                   "differentiated")
            value = value[index]
        expect(isinstance(value, torch.Tensor) and bool(torch.isfinite(value).all()),
               f"{what}: {fn} returned {describe(value)} with non-finite values at a nearby input")
        values[scale] = value.detach().double()
        if scale == 0.0:  # the same call as the gradient call's: other values mean differences tell nothing
            reported = _at(result.value, output)  # (a function drawing from its own random generator, say)
            if isinstance(reported, torch.Tensor) and reported.shape == value.shape \
                    and differs(reported.detach().double(), values[0.0]):
                return
    shapes = {tuple(v.shape) for v in values.values()}
    expect(len(shapes) == 1, f"{what}: {fn} returned different shapes at nearby inputs: {sorted(shapes)}")
    c = torch.ones_like(values[1.0]) if cotangent is None else cotangent.detach().double().expand_as(values[1.0])
    near = float((c * (values[1.0] - values[-1.0])).sum()) / (2 * STEP)
    far = float((c * (values[2.0] - values[-2.0])).sum()) / (4 * STEP)
    difference = (4 * near - far) / 3  # Richardson: the h^2 terms cancel
    magnitude = sum(float((c.abs() * (values[s].abs() + 1)).sum()) for s in (1.0, -1.0, 2.0, -2.0))
    claimed = sum(float((g.double() * v).sum()) for g, v in pairs)
    scale = sum(float((g.double() * v).abs().sum()) * tolerance(g.dtype)[0] for g, v in pairs)
    entries = values[1.0].numel() + sum(v.numel() for _, v in pairs)
    slack = (scale + DIFFERENCE_RTOL * abs(difference) + abs(near - far) + VALUE_ROUNDING * magnitude / STEP
             + 1e3 * SUBNORMAL_SPACING * entries / STEP)
    expect(math.isfinite(claimed) and abs(claimed - difference) <= slack,
           f"{what} does not match how {fn}'s value changes: along a random direction v the reported gradient "
           f"gives {claimed:.8g}, while the values at x ± {STEP:g} v give {difference:.8g} (tolerance "
           f"{slack:.2g}). Compute the result with differentiable torch operations all the way (no .detach(), "
           ".item(), .numpy() or torch.no_grad() on the path)")


def _at(value: Any, output: tuple[int, ...]) -> Any:
    """The differentiated output of a call's value (``output``: its index path), or None if it has none."""
    for index in output:
        if not (isinstance(value, (tuple, list)) and -len(value) <= index < len(value)):
            return None
        value = value[index]
    return value


def _moved(obj: Any, direction: Any, scale: float) -> Any:
    """``obj`` moved by ``scale * STEP`` along ``direction``."""
    if isinstance(obj, Fixture):
        return Fixture(obj.name, obj.params, {**obj.weights, **{k: obj.weights[k] + scale * STEP * d
                                                                for k, d in direction.items()}})
    return obj + scale * STEP * direction


def _direction(t: torch.Tensor, gen: torch.Generator, what: str) -> torch.Tensor:
    if t.dtype != torch.float64:
        raise TypeError(f"expect_derivative needs float64 inputs (a difference quotient with a step of {STEP:g}); "
                        f"{what} is {t.dtype}")
    return torch.randn(t.shape, generator=gen, dtype=torch.float64) * (1 + t.detach().abs())


def _as_grad(g: Any, like: torch.Tensor, what: str) -> torch.Tensor:
    if g is None:
        return torch.zeros_like(like, dtype=torch.float64)
    expect(isinstance(g, torch.Tensor) and g.shape == like.shape,
           f"{what}: got {describe(g)}, expected a tensor of shape {list(like.shape)}")
    expect(bool(torch.isfinite(g).all()), f"{what}: got non-finite values")
    return g


def _replace(value: Any, swap: dict[int, Any]) -> Any:
    """``value`` with the objects keyed by id in ``swap`` replaced, looking into tuples, lists, dicts and
    student objects."""
    if id(value) in swap:
        return swap[id(value)]
    if isinstance(value, tuple):
        return tuple(_replace(v, swap) for v in value)
    if isinstance(value, list):
        return [_replace(v, swap) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, swap) for k, v in value.items()}
    if isinstance(value, StudentObject):
        return StudentObject(value.name, _replace(value.args, swap), _replace(value.kwargs, swap))
    return value
