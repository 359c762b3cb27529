"""Degenerate answers for `validate`: code that is not the function must earn nothing.

Two kinds, both graded by ``grader.validate``:

1. Generated, one submission per ``KINDS`` entry: every graded function (and
   every public method of a graded class) returns the reference's output
   with each tensor replaced by

   - ``zeros``: zeros of the same shape and dtype;
   - ``ones``: the constant 1;
   - ``echo``: the first tensor argument that broadcasts to the output's
     shape (``forward(x) -> (x, 0)``: the identity), else zeros.

   The replacements keep the autograd graph (``out * 0``), so "a gradient
   reaches the input" holds and only the values are wrong: the strongest
   degenerate answer of its kind. The reference runs inside the submission
   (the module embeds its source) only to give each output its structure,
   shape and dtype. Such a submission must score 0 in all.

2. Hand-written, ``assignments/<id>/degenerate/*.py``: a fragment defining one
   or more graded functions that handle only the special cases some check
   probes (``w`` of 0 or 1, ``t = 0``, a unit-norm critic). It is appended to
   the reference module, so it replaces those functions and the rest stays
   correct; the checks of the functions it defines must earn 0 points.
"""
from __future__ import annotations

import ast
from pathlib import Path

KINDS = ("zeros", "ones", "echo")
FOLDER = "degenerate"

_RUNTIME = '''

# ---------------------------------------------------------------- dgm-grade validate: degenerate answer ({kind})
import torch as _dg_torch

_dg_reference: dict = {{"__name__": "_dg_reference"}}
exec(compile({source!r}, "reference", "exec"), _dg_reference)


def _dg_tensors(args, kwargs):
    found = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, _dg_torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found += [v for v in value if isinstance(v, _dg_torch.Tensor)]
    return found


def _dg_replace(out, inputs):
    if isinstance(out, _dg_torch.Tensor):
        if not out.is_floating_point():
            return _dg_torch.zeros_like(out)
        zero = _dg_torch.where(_dg_torch.isfinite(out), out, _dg_torch.zeros_like(out)) * 0
        if {kind!r} == "ones":
            return zero + 1
        if {kind!r} == "echo":
            for t in inputs:
                try:
                    if t.is_floating_point() and _dg_torch.broadcast_shapes(t.shape, out.shape) == out.shape:
                        return t.to(out.dtype).expand_as(out) + zero
                except RuntimeError:
                    pass
        return zero
    if isinstance(out, (list, tuple)):
        return type(out)(_dg_replace(v, inputs) for v in out)
    if isinstance(out, dict):
        return {{k: _dg_replace(v, inputs) for k, v in out.items()}}
    if isinstance(out, float):
        return 1.0 if {kind!r} == "ones" else 0.0
    return out


def _dg_function(name):
    reference = _dg_reference[name]

    def degenerate(*args, **kwargs):
        return _dg_replace(reference(*args, **kwargs), _dg_tensors(args, kwargs))

    degenerate.__name__ = name
    return degenerate


def _dg_class(name, methods):
    reference = _dg_reference[name]

    def wrap(method):
        def degenerate(self, *args, **kwargs):
            return _dg_replace(getattr(reference, method)(self, *args, **kwargs), _dg_tensors(args, kwargs))
        return degenerate

    return type(name, (reference,), {{m: wrap(m) for m in methods}})

'''


def generated(reference_source: str, functions: list[str], kind: str) -> str:
    """A module where every graded function returns a ``kind`` answer (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown degenerate kind {kind!r} (one of {', '.join(KINDS)})")
    tree = ast.parse(reference_source)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    lines = [_RUNTIME.format(kind=kind, source=reference_source)]
    for name in functions:
        if name in classes:
            methods = [m.name for m in classes[name].body
                       if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith("_")]
            lines.append(f"{name} = _dg_class({name!r}, {methods!r})")
        else:
            lines.append(f"{name} = _dg_function({name!r})")
    return "from __future__ import annotations\n" + "\n".join(lines) + "\n"


def hand_written(assignment_path: Path) -> dict[str, str]:
    """``degenerate/<name>.py`` fragments of an assignment: file stem -> source."""
    folder = Path(assignment_path) / FOLDER
    return {p.stem: p.read_text() for p in sorted(folder.glob("*.py"))} if folder.is_dir() else {}


def defined_names(fragment: str) -> list[str]:
    """The public top-level functions and classes a fragment defines (what it replaces in the reference);
    its private helpers (``_name``) are not graded functions."""
    return [n.name for n in ast.parse(fragment).body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith("_")]


def with_fragment(reference_source: str, fragment: str) -> str:
    """The reference module with a fragment's definitions replacing its own."""
    return reference_source.rstrip() + "\n\n\n# ---- dgm-grade validate: special-case answer\n" + fragment
