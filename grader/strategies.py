"""Hypothesis strategies for tensors, shapes and distribution parameters.

Built from small pieces in the style of ``hypothesis.extra.numpy``: every
argument is a value or a strategy, defaults are small, and tensors are drawn
as float64 numpy arrays and then cast, so the same example exists in every
dtype. Drawn values have compact reprs that name their fields, so a shrunk
counterexample reads well: ``Gaussian(mean=tensor(...), log_var=tensor(...))``,
``BatchEvent(batch=(2,), event=3)``. A value type of an assignment's own gets
the same with ``fields_repr`` and ``_repr_pretty_ = pretty_as_repr``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .compare import hanging

FLOAT_DTYPES = (torch.float32, torch.float64)


def fields_repr(type_name: str, **fields: Any) -> str:
    """``Name(a=..., b=...)``: on one line when it is short, else one field per line,
    aligned, with multi-line values (tensors) indented under their field."""
    parts = [hanging(f"{name}=", repr(value)) for name, value in fields.items()]
    one_line = f"{type_name}({', '.join(parts)})"
    if "\n" not in one_line and len(one_line) <= 80:
        return one_line
    return hanging(f"{type_name}(", ",\n".join(parts)) + ")"


def pretty_as_repr(self, printer, cycle: bool) -> None:
    """Hypothesis' printer hook (``_repr_pretty_``): show the value as its ``repr`` says,
    keeping its line breaks (hypothesis would otherwise print a dataclass field by field
    and a tuple by position)."""
    for i, line in enumerate(repr(self).splitlines()):
        if i:
            printer.break_()
        printer.text(line)


def _strategy(value):
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


def dtypes(choices: Sequence[torch.dtype] = FLOAT_DTYPES) -> st.SearchStrategy[torch.dtype]:
    return st.sampled_from(list(choices))


def shapes(*, min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 5) -> st.SearchStrategy[tuple]:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def tensors(draw, shape=shapes(), dtype=dtypes(), *, low: float = -10.0, high: float = 10.0) -> torch.Tensor:
    """A tensor of ``shape`` and ``dtype`` with finite values in [low, high]."""
    shape, dtype = draw(_strategy(shape)), draw(_strategy(dtype))
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)
    array = draw(hnp.arrays("float64", shape, elements=elements))
    return torch.from_numpy(array).to(dtype)


@dataclass(frozen=True)
class Gaussian:
    """Diagonal Gaussian parameters of one shape and dtype."""

    mean: torch.Tensor
    log_var: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        return self.mean.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.mean.dtype

    def __repr__(self) -> str:
        return fields_repr("Gaussian", mean=self.mean, log_var=self.log_var)

    _repr_pretty_ = pretty_as_repr


@st.composite
def gaussians(draw, shape=shapes(), dtype=dtypes(), *, mean_bound: float = 1e3,
              log_var_range: tuple[float, float] = (-30.0, 30.0)) -> Gaussian:
    """Mean in [-mean_bound, mean_bound], log-variance in log_var_range (the spec's stable domain)."""
    shape, dtype = draw(_strategy(shape)), draw(_strategy(dtype))
    mean = draw(tensors(shape, dtype, low=-mean_bound, high=mean_bound))
    log_var = draw(tensors(shape, dtype, low=log_var_range[0], high=log_var_range[1]))
    return Gaussian(mean, log_var)


class BatchEvent(NamedTuple):
    """A batch shape and an event size: the leading dims and the summed-over last dim."""

    batch: tuple[int, ...]
    event: int

    @property
    def shape(self) -> tuple[int, ...]:
        """The full shape, ``(*batch, event)``."""
        return (*self.batch, self.event)

    _repr_pretty_ = pretty_as_repr


@st.composite
def batch_and_event(draw, *, max_batch_dims: int = 2, max_side: int = 4, max_event: int = 6) -> BatchEvent:
    """BatchEvent(batch, event) pairs; they unpack and index like ``(batch, event)`` tuples."""
    batch = draw(shapes(min_dims=0, max_dims=max_batch_dims, max_side=max_side))
    return BatchEvent(batch, draw(st.integers(1, max_event)))
