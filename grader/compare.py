"""Comparisons a check makes, in a fixed order, with "got / expected" messages.

Order: missing -> type -> shape -> dtype -> finite -> close. The first that
fails raises ``CheckFailed`` with a message a student can act on.

Tolerances follow the spec: exact values are judged on float64 (rtol 1e-6),
float32 results within about 1e-3 relative, with absolute slack where a
check says a formula is ill-conditioned.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch

from .worker.protocol import Unsupported


class CheckFailed(AssertionError):
    """A property does not hold; the message says what was expected and what came back."""


TOLERANCES = {  # dtype -> (rtol, atol)
    torch.float64: (1e-6, 1e-9),
    torch.float32: (1e-3, 1e-5),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (2e-2, 1e-2),
}


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (1e-6, 1e-9))


def fail(message: str) -> None:
    raise CheckFailed(message)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def describe(value: Any, *, items: bool = True) -> str:
    """A short description of any value, for messages.

    items: describe the first few items of a tuple or list too (one level deep).
    """
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {list(value.shape)} and dtype {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, Unsupported):
        return value.type_name
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        text = f"{type(value).__name__} of {len(value)}"
        if items and value:
            listed = ", ".join(describe(v, items=False) for v in value[:4])
            text += f" ({listed}{', ...' if len(value) > 4 else ''})"
        return text
    return type(value).__name__


def expect_tensor(
    got: Any,
    *,
    what: str = "output",
    shape: tuple[int, ...] | torch.Size | None = None,
    dtype: torch.dtype | None = None,
    finite: bool = True,
) -> torch.Tensor:
    """``got`` is a tensor with the given shape and dtype (and finite values)."""
    if got is None:
        fail(f"{what}: got None, expected a tensor (did the function return anything?)")
    if not isinstance(got, torch.Tensor):
        fail(f"{what}: got a {describe(got)}, expected a torch.Tensor")
    if shape is not None and tuple(got.shape) != tuple(shape):
        fail(f"{what}: got shape {list(got.shape)}, expected {list(shape)}")
    if dtype is not None and got.dtype != dtype:
        fail(f"{what}: got dtype {str(got.dtype).removeprefix('torch.')}, expected {str(dtype).removeprefix('torch.')} "
             "(keep the input dtype; do not hard-code float32)")
    if finite and got.is_floating_point() and not bool(torch.isfinite(got).all()):
        bad = (~torch.isfinite(got)).nonzero()[0].tolist()
        fail(f"{what}: got a non-finite value {got[tuple(bad)].item()} at index {bad} (numerical instability?)")
    return got


def expect_training_signal(grads: Iterable[torch.Tensor], what: str) -> None:
    """Some gradient of a training loss is nonzero (a training check asks at its first step).

    When every gradient of the loss with respect to the judge's model is exactly 0, the loss does not
    depend on the model (a constant, or the model's output multiplied by 0), so no optimiser step can
    move it: the check fails now, with that reason, instead of training for hundreds of steps first.
    A correct loss at a randomly initialised model has a nonzero gradient for its output layer.
    """
    if all(not bool(g.ne(0).any()) for g in grads):
        fail(f"{what}: every gradient is exactly 0 at the first step, so training cannot change the model "
             "(does the loss depend on the model's output?)")


def expect_unchanged(result: Any, *inputs: torch.Tensor) -> None:
    """The call left its inputs as they were (``student.call(..., return_inputs=True)``).

    Two tests, both must pass. The worker's account: each input tensor as the worker says it was after
    the call (student code owns the worker, so this can be forged; it only ever fails a check). The
    judge's own: the worker called the function a second time on the same objects with the same seed,
    and that result must equal the first, so a function whose result depends on what it modified shows
    it in its own output. Only where the function is reproducible: a third call, on inputs built afresh
    with the same seed, must equal the first too, or the second tells nothing (a function drawing from
    its own generator) and the worker's account alone decides. A worker patched to copy the inputs before each call of the function (or to
    answer the second call from the first) still passes: code in the worker can always lie about
    itself; see docs/security.md.
    """
    for i, t in enumerate(inputs):
        after = result.input_after(t)
        expect(after is not None and torch.equal(after, t),
               f"argument {i + 1} (shape {list(t.shape)}) was modified in place; compute on copies "
               "(x = x + 1, not x += 1)")
    from .client import NOT_REPEATED

    expect(result.repeated is not NOT_REPEATED,
           "the worker did not return the second call's result (was the grader's worker modified?)")
    difference = differs(result.value, result.repeated, exact=result.exact)
    if difference and result.control is not NOT_REPEATED and differs(result.value, result.control, exact=result.exact):
        return  # not reproducible even on fresh inputs (its own random generator, say): a second call tells nothing
    expect(not difference,
           f"calling the function a second time on the same tensors gave a different result ({difference}): "
           "the first call modified its inputs in place; compute on copies (x = x + 1, not x += 1)")


def differs(a: Any, b: Any, *, exact: bool = True, where: str = "the result") -> str:
    """Where two decoded results differ ("" when they agree): tensors bit for bit (NaN equal to NaN) or,
    with ``exact`` False, within the dtype's tolerance; tuples, lists and dicts item by item."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{where}: {describe(a)} then {describe(b)}"
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{where}: {describe(a)} then {describe(b)}"
        if exact:
            same = (a == b) | (a != a) & (b != b) if a.is_floating_point() or a.is_complex() else a == b
        else:
            rtol, atol = tolerance(a.dtype)
            same = torch.isclose(a.double(), b.double(), rtol=rtol, atol=atol, equal_nan=True) \
                if a.is_floating_point() else a == b
        if not bool(same.all()):
            n = int((~same).sum())
            return f"{where}: {n} of {same.numel()} values changed"
        return ""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and type(a) is type(b):
        if len(a) != len(b):
            return f"{where}: {describe(a)} then {describe(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := differs(x, y, exact=exact,
                                                                               where=f"{where}[{i}]"))), "")
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where}: keys {sorted(map(str, a))} then {sorted(map(str, b))}"
        return next((d for k in a if (d := differs(a[k], b[k], exact=exact, where=f"{where}[{k!r}]"))), "")
    if type(a) is not type(b):
        return f"{where}: {describe(a)} then {describe(b)}"
    if isinstance(a, float) and a != a and b != b:
        return ""
    if isinstance(a, Unsupported):
        return "" if a.type_name == b.type_name else f"{where}: {describe(a)} then {describe(b)}"
    return "" if a == b else f"{where}: {a!r} then {b!r}"


def expect_tuple(got: Any, length: int, *, what: str = "output") -> tuple:
    if not isinstance(got, (tuple, list)):
        fail(f"{what}: got a {describe(got)}, expected a tuple of {length}")
    if len(got) != length:
        fail(f"{what}: got a tuple of {len(got)}, expected {length}")
    return tuple(got)


def expect_close(
    got: Any,
    expected: torch.Tensor,
    *,
    what: str = "output",
    rtol: float | None = None,
    atol: float | None = None,
    check_dtype: bool = True,
    broadcast: bool = False,
) -> torch.Tensor:
    """``got`` matches ``expected`` in shape, dtype, finiteness and value.

    broadcast: accept any shape that broadcasts to expected's (spec: "broadcastable").
    """
    expected = torch.as_tensor(expected)
    got = expect_tensor(got, what=what, shape=None if broadcast else expected.shape,
                        dtype=expected.dtype if check_dtype else None)
    if broadcast:
        try:
            got = got.expand_as(expected) if got.dim() <= expected.dim() else got
        except RuntimeError:
            fail(f"{what}: got shape {list(got.shape)}, which does not broadcast to {list(expected.shape)}")
        if got.shape != expected.shape:
            fail(f"{what}: got shape {list(got.shape)}, expected {list(expected.shape)} or broadcastable to it")
    d_rtol, d_atol = tolerance(got.dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    a, b = got.detach().double().cpu(), expected.detach().double().cpu()
    if not bool(torch.isfinite(b).all()):
        same_nonfinite = torch.equal(torch.isfinite(a), torch.isfinite(b))
        expect(same_nonfinite, f"{what}: non-finite values where none were expected")
    close = torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(close.all()):
        err = torch.where(close, torch.zeros_like(a), (a - b).abs())
        idx = tuple(int(i) for i in torch.unravel_index(err.argmax(), err.shape)) if err.dim() else ()
        where = f" at index {list(idx)}" if idx else ""
        n_bad = int((~close).sum())
        fail(
            f"{what}: {n_bad} of {close.numel()} values differ{where}\n"
            f"  got:      {a[idx].item():.10g}\n"
            f"  expected: {b[idx].item():.10g}\n"
            f"  (tolerance rtol={rtol:g}, atol={atol:g})"
            + (f"\n  got (all):      {short(a)}\n  expected (all): {short(b)}" if a.numel() <= 12 else "")
        )
    return got


def hanging(lead: str, text: str) -> str:
    """``lead`` followed by ``text``, its later lines indented to start under ``text``'s first.

    ``hanging("  q = ", repr(t))`` keeps a multi-line tensor's rows aligned as torch printed them.
    """
    return lead + text.replace("\n", "\n" + " " * len(lead))


def short(t: torch.Tensor) -> str:
    """A one-line rendering of a small tensor."""
    values = ", ".join(f"{v:.6g}" for v in t.flatten().tolist()[:12])
    return f"[{values}{', ...' if t.numel() > 12 else ''}] shape {list(t.shape)}"
