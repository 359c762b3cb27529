"""Mutation testing of an assignment's checks: small, plausible bugs in the reference.

``mutants(source)`` parses a reference module and, for every node inside a
public function or class, asks each operator of ``OPERATORS`` for the
replacements it proposes (a flipped sign, a changed constant, a dropped
``.sum(-1)``...). Each replacement becomes one ``Mutant``: the module's source
with that single node's text replaced, so comments, formatting and the line
numbers of everything else stay as they were. Mutants that do not compile,
that parse to the original module, or that parse to the same module as an
earlier mutant are dropped.

A mutant's ``id`` is a short hash of (enclosing function, operator, original
snippet, replacement snippet, occurrence index of that same pair within the
function): it does not depend on line numbers, so it stays the same when
unrelated code moves, and an equivalent mutant listed once stays listed.

Adding an operator: write a function ``(node) -> list[(replacement, label)]``
that returns ``[]`` for nodes it does not apply to, and add it to ``OPERATORS``.
A replacement is an AST node (expression or statement) that takes the place
of ``node``.
"""
from __future__ import annotations

import ast
import copy
import hashlib
from dataclasses import dataclass
from typing import Callable, Iterator

Replacement = tuple[ast.AST, str]  # (the node that takes the original's place, a short label)
Operator = Callable[[ast.AST], list[Replacement]]


@dataclass(frozen=True)
class Mutant:
    id: str  # 12 hex digits, stable when unrelated lines move
    function: str  # enclosing public function, or Class.method
    operator: str  # the operator's name in OPERATORS, e.g. "drop_reduction"
    description: str  # "line 57: `0.5 * log_var` -> `log_var` (dropped factor)"
    source: str  # the whole mutated module
    line: int


# ---------------------------------------------------------------------- helpers


def _num(node: ast.AST) -> float | int | None:
    """The value of a numeric literal (``3``, ``-1``, ``0.5``), else None (bools are not numbers here)."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _num(node.operand)
        return None if inner is None else -inner
    return None


def _literal(value: float | int) -> ast.expr:
    if value < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _plus(node: ast.expr, delta: int) -> ast.expr:
    op = ast.Add() if delta > 0 else ast.Sub()
    return ast.BinOp(copy.deepcopy(node), op, ast.Constant(abs(delta)))


def _call_name(node: ast.Call) -> str:
    """``torch.logsumexp`` -> "logsumexp", ``x.sum`` -> "sum", ``f`` -> "f"."""
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_module_call(node: ast.Call) -> bool:
    """``torch.sum(x)``, ``F.logsigmoid(x)``, ``torch.special.x(...)``: a library function, not a method."""
    value = node.func.value if isinstance(node.func, ast.Attribute) else None
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name) and value.id in LIBRARIES


def _root(node: ast.expr) -> str:
    """``math.log`` -> "math", ``x.sum`` -> "x"."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


LIBRARIES = {"torch", "F", "nn", "np", "numpy", "math", "special", "dist", "D"}


# ---------------------------------------------------------------------- operators

SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult,
}


def binary_operator(node: ast.AST) -> list[Replacement]:
    """``a + b`` -> ``a - b``, ``a * b`` -> ``a / b``, ``a ** b`` -> ``a * b`` (and the augmented forms)."""
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAPS and not _sequence_operands(node):
        new = copy.deepcopy(node)
        new.op = SWAPS[type(node.op)]()
        return [(new, "swapped operator")]
    return []


def _sequence_operands(node: ast.BinOp | ast.AugAssign) -> bool:
    """``(k,) + shape``, ``"a" + b``: sequence arithmetic, which the arithmetic operators leave alone."""
    sides = (node.left, node.right) if isinstance(node, ast.BinOp) else (node.target, node.value)
    return any(isinstance(s, (ast.Tuple, ast.List, ast.JoinedStr))
               or (isinstance(s, ast.Constant) and isinstance(s.value, str)) for s in sides)


def exponent(node: ast.AST) -> list[Replacement]:
    """``a ** 2`` -> ``a ** 1`` / ``a ** 3``; ``a ** b`` -> ``a ** (b + 1)``."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)):
        return []
    value = _num(node.right)
    if value is None:
        exps = [_plus(node.right, 1)]
    else:
        exps = [_literal(v) for v in dict.fromkeys((value - 1, value + 1, value * 2)) if v != value]
    return [(ast.BinOp(copy.deepcopy(node.left), ast.Pow(), e), "changed exponent") for e in exps]


def unary_sign(node: ast.AST) -> list[Replacement]:
    """``-x`` -> ``x`` and ``not c`` -> ``c`` (negative literals are left to ``constant``)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not, ast.UAdd)) and _num(node) is None:
        return [(copy.deepcopy(node.operand), "dropped not" if isinstance(node.op, ast.Not) else "dropped sign")]
    return []


def negate_argument(node: ast.AST) -> list[Replacement]:
    """``F.logsigmoid(x)`` -> ``F.logsigmoid(-x)``, likewise exp, sigmoid, softplus, tanh, relu.

    An argument that is already negated is left to ``unary_sign`` (``f(--x)`` is ``f(x)``).
    """
    if (isinstance(node, ast.Call) and _call_name(node) in SIGN_SENSITIVE and node.args
            and not (isinstance(node.args[0], ast.UnaryOp) and isinstance(node.args[0].op, ast.USub))):
        new = copy.deepcopy(node)
        new.args[0] = ast.UnaryOp(ast.USub(), new.args[0])
        return [(new, "negated argument")]
    return []


SIGN_SENSITIVE = {"logsigmoid", "sigmoid", "softplus", "exp", "expm1", "tanh", "relu", "log_softmax", "softmax"}


def constant(node: ast.AST) -> list[Replacement]:
    """Numeric literals: ints n -> n + 1, n - 1; floats c -> c + 1, c - 1, 2c; -n -> n; True <-> False.

    Literal exponents are left to ``exponent``; subscript indices and dims become
    off-by-one mutants here too (``[0]`` -> ``[1]``, ``dim=-1`` -> ``dim=-2``).
    """
    if getattr(node, "_exponent", False):
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return [(ast.Constant(not node.value), "flipped boolean")]
    value = _num(node)
    if value is None:
        return []
    if isinstance(value, int):
        options = [value + 1, value - 1]
    else:
        options = [value + 1.0, value - 1.0, value * 2.0]
    if value < 0:
        options.append(-value)
    return [(_literal(v), "changed constant") for v in dict.fromkeys(options) if v != value]


MATH_CONSTANTS = {"pi": "e", "e": "pi", "tau": "pi", "inf": "nan"}


def math_constant(node: ast.AST) -> list[Replacement]:
    """``math.pi`` -> ``math.e`` and the like."""
    if (isinstance(node, ast.Attribute) and node.attr in MATH_CONSTANTS and isinstance(node.value, ast.Name)
            and node.value.id in ("math", "torch", "np")):
        return [(ast.Attribute(copy.deepcopy(node.value), MATH_CONSTANTS[node.attr], ast.Load()), "changed constant")]
    return []


INDEX_KEYWORDS = {"dim", "axis", "dims", "start_dim", "end_dim", "index"}


def off_by_one(node: ast.AST) -> list[Replacement]:
    """Non-literal indices and dims: ``x[i]`` -> ``x[i + 1]`` / ``x[i - 1]``, ``dim=d`` -> ``dim=d + 1``."""
    if isinstance(node, ast.Subscript):
        spots = _index_spots(node.slice)
        out = []
        for path in spots:
            for delta in (1, -1):
                new = copy.deepcopy(node)
                _set_path(new, ["slice", *path], _plus(_get_path(node, ["slice", *path]), delta))
                out.append((new, "off by one"))
        return out
    if isinstance(node, ast.Call):
        out = []
        for i, kw in enumerate(node.keywords):
            if kw.arg in INDEX_KEYWORDS and _num(kw.value) is None and not isinstance(kw.value, ast.Constant):
                for delta in (1, -1):
                    new = copy.deepcopy(node)
                    new.keywords[i].value = _plus(kw.value, delta)
                    out.append((new, "off by one"))
        return out
    return []


def _index_spots(index: ast.expr) -> list[list]:
    """Paths (below ``.slice``) of the non-literal index expressions of a subscript."""
    def plain(e: ast.expr) -> bool:
        return not isinstance(e, (ast.Constant, ast.Slice, ast.Starred, ast.Tuple)) and _num(e) is None

    if isinstance(index, ast.Tuple):
        spots: list[list] = []
        for i, e in enumerate(index.elts):
            if plain(e):
                spots.append(["elts", i])
            elif isinstance(e, ast.Slice):
                spots += [["elts", i, f] for f in ("lower", "upper")
                          if getattr(e, f) is not None and plain(getattr(e, f))]
        return spots
    if isinstance(index, ast.Slice):
        return [[f] for f in ("lower", "upper") if getattr(index, f) is not None and plain(getattr(index, f))]
    return [[]] if plain(index) else []


def _get_path(node: ast.AST, path: list) -> ast.AST:
    for step in path:
        node = node[step] if isinstance(step, int) else getattr(node, step)
    return node


def _set_path(node: ast.AST, path: list, value: ast.AST) -> None:
    parent, last = _get_path(node, path[:-1]), path[-1]
    if isinstance(last, int):
        parent[last] = value
    else:
        setattr(parent, last, value)


REDUCTIONS = {"sum", "mean", "prod", "logsumexp", "amax", "amin", "max", "min", "norm", "std", "var",
              "cumsum", "cumprod", "nansum", "nanmean", "trace"}


def drop_reduction(node: ast.AST) -> list[Replacement]:
    """``x.sum(-1)`` -> ``x``; ``torch.logsumexp(x, dim)`` -> ``x``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REDUCTIONS):
        return []
    if _is_module_call(node):
        return [(copy.deepcopy(node.args[0]), "dropped reduction")] if node.args else []
    return [(copy.deepcopy(node.func.value), "dropped reduction")]


def drop_factor(node: ast.AST) -> list[Replacement]:
    """``a * b`` -> ``a`` and ``b``; ``a / b`` -> ``a``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.MatMult)):
        return [(copy.deepcopy(node.left), "dropped factor"), (copy.deepcopy(node.right), "dropped factor")]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.FloorDiv)):
        return [(copy.deepcopy(node.left), "dropped divisor")]
    return []


def drop_term(node: ast.AST) -> list[Replacement]:
    """``a + b`` -> ``a`` and ``b``; ``a - b`` -> ``a`` (string concatenation is left alone)."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))) or _sequence_operands(node):
        return []
    out = [(copy.deepcopy(node.left), "dropped term")]
    if isinstance(node.op, ast.Add):
        out.append((copy.deepcopy(node.right), "dropped term"))
    return out


def where_branches(node: ast.AST) -> list[Replacement]:
    """``torch.where(c, a, b)`` -> ``torch.where(c, b, a)``."""
    if isinstance(node, ast.Call) and _call_name(node) == "where" and len(node.args) == 3:
        new = copy.deepcopy(node)
        new.args[1], new.args[2] = new.args[2], new.args[1]
        return [(new, "swapped where branches")]
    return []


def swap_arguments(node: ast.AST) -> list[Replacement]:
    """``f(a, b, c)`` -> ``f(b, a, c)`` and ``f(a, c, b)``: each adjacent pair of positional arguments."""
    if not isinstance(node, ast.Call) or len(node.args) < 2:
        return []
    out = []
    for i in range(len(node.args) - 1):
        a, b = node.args[i], node.args[i + 1]
        if isinstance(a, ast.Starred) or isinstance(b, ast.Starred) or ast.dump(a) == ast.dump(b):
            continue
        new = copy.deepcopy(node)
        new.args[i], new.args[i + 1] = new.args[i + 1], new.args[i]
        out.append((new, f"swapped arguments {i + 1} and {i + 2}"))
    return out


NO_GRADIENT = {  # calls whose result is never a differentiable tensor: detaching it changes nothing
    "randn", "rand", "randint", "randn_like", "rand_like", "zeros", "ones", "zeros_like", "ones_like", "empty",
    "empty_like", "full", "full_like", "arange", "linspace", "eye", "tensor", "broadcast_shapes", "Size",
    "len", "int", "float", "bool", "tuple", "list", "range", "abs", "round",
}


def detach(node: ast.AST) -> list[Replacement]:
    """``x.detach()`` -> ``x``; the value of an assignment or a return -> ``(value).detach()``.

    Values that cannot be differentiable tensors are skipped: literals,
    tuples (unpacking), ``math.*`` and the factories in ``NO_GRADIENT``.
    """
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "detach"
            and not node.args):
        return [(copy.deepcopy(node.func.value), "removed .detach()")]
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Return)) and node.value is not None:
        value = node.value
        targets = node.targets if isinstance(node, ast.Assign) else []
        if (isinstance(value, (ast.Constant, ast.Tuple, ast.List, ast.Dict)) or _num(value) is not None
                or any(isinstance(t, (ast.Tuple, ast.List)) for t in targets)
                or (isinstance(value, ast.Call) and (_call_name(value) in NO_GRADIENT or _root(value.func) == "math"))):
            return []
        new = copy.deepcopy(node)
        new.value = ast.Call(ast.Attribute(new.value, "detach", ast.Load()), [], [])
        return [(new, "added .detach()")]
    return []


COMPARE_FLIPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}


def comparison(node: ast.AST) -> list[Replacement]:
    """``<`` -> ``<=``, ``>=`` -> ``>``, ``==`` -> ``!=``, ``is None`` -> ``is not None``, ...; ``and`` <-> ``or``."""
    if isinstance(node, ast.Compare):
        out = []
        for i, op in enumerate(node.ops):
            new = copy.deepcopy(node)
            new.ops[i] = COMPARE_FLIPS[type(op)]()
            out.append((new, "flipped comparison"))
        return out
    if isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return [(new, "swapped and/or")]
    return []


OPERATORS: dict[str, Operator] = {
    "binary_operator": binary_operator,
    "exponent": exponent,
    "unary_sign": unary_sign,
    "negate_argument": negate_argument,
    "constant": constant,
    "math_constant": math_constant,
    "off_by_one": off_by_one,
    "drop_reduction": drop_reduction,
    "drop_factor": drop_factor,
    "drop_term": drop_term,
    "where_branches": where_branches,
    "swap_arguments": swap_arguments,
    "detach": detach,
    "comparison": comparison,
}


# ---------------------------------------------------------------------- driver


def mutants(source: str, *, operators: dict[str, Operator] | None = None) -> list[Mutant]:
    """Every single-edit mutant of ``source``'s public functions and classes, in source order."""
    operators = OPERATORS if operators is None else operators
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    seen_sources = {ast.dump(tree)}
    seen_keys: dict[tuple[str, str, str, str], int] = {}
    out: list[Mutant] = []
    for function, node in _mutable_nodes(tree):
        for op_name, operator in operators.items():
            for replacement, label in operator(node):
                original, new_text = _snippet(node), _snippet(replacement)
                key = (function, op_name, original, new_text)
                occurrence = seen_keys.get(key, 0)
                seen_keys[key] = occurrence + 1
                mutated = _splice(lines, node, new_text)
                shape = _parsed(mutated)
                if shape is None or shape in seen_sources:
                    continue
                seen_sources.add(shape)
                digest = hashlib.sha1("\x1f".join((*key, str(occurrence))).encode()).hexdigest()[:12]
                out.append(Mutant(digest, function, op_name, _describe(node, original, new_text, label), mutated,
                                  node.lineno))
    return out


def _mutable_nodes(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """(enclosing name, node) for every node in the bodies of public functions and of public classes' methods.

    Docstrings, decorators, signatures (annotations, defaults) and the
    insides of f-strings are not mutated.
    """
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and not stmt.name.startswith("_"):
            yield from _body_nodes(stmt.name, stmt)
        elif isinstance(stmt, ast.ClassDef) and not stmt.name.startswith("_"):
            for item in stmt.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield from _body_nodes(f"{stmt.name}.{item.name}", item)


def _body_nodes(name: str, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[tuple[str, ast.AST]]:
    body = fn.body[1:] if ast.get_docstring(fn, clean=False) is not None else fn.body
    for stmt in body:
        yield from _walk(name, stmt)


def _walk(name: str, node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    if isinstance(node, ast.JoinedStr) or isinstance(node, (ast.arguments, ast.expr_context)):
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and _num(node.right) is not None:
        node.right._exponent = True  # type: ignore[attr-defined]  # a literal exponent belongs to `exponent`
    if hasattr(node, "lineno"):
        yield name, node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        children = node.body if isinstance(node.body, list) else [node.body]
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        # a negative literal (-1) is one constant: its inner 1 is not mutated again
        if isinstance(node, ast.UnaryOp) and _num(node) is not None:
            continue
        yield from _walk(name, child)


def _snippet(node: ast.AST) -> str:
    return ast.unparse(node)


def _splice(lines: list[str], node: ast.AST, text: str) -> str:
    """The module with ``node``'s source range replaced by ``text`` (expressions parenthesised)."""
    if isinstance(node, ast.expr):
        text = f"({text})"
    start, end = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
    first = lines[start].encode()[: node.col_offset].decode()
    last = lines[end].encode()[node.end_col_offset :].decode()  # type: ignore[attr-defined]
    return "".join(lines[:start]) + first + text + last + "".join(lines[end + 1 :])


def _parsed(source: str) -> str | None:
    """A normal form of ``source`` (its AST dump), or None if it does not compile."""
    try:
        compile(source, "<mutant>", "exec")
        return ast.dump(ast.parse(source))
    except (SyntaxError, ValueError):
        return None


def _describe(node: ast.AST, original: str, new: str, label: str, width: int = 70) -> str:
    def cut(s: str) -> str:
        s = " ".join(s.split())
        return s if len(s) <= width else s[: width - 3] + "..."

    return f"line {node.lineno}: `{cut(original)}` -> `{cut(new)}` ({label})"
