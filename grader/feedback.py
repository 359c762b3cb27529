"""Feedback a student can act on: counterexamples, failure messages and root-cause hints.

- ``counterexample``: hypothesis' notes about the shrunk example, one
  ``name = value`` line per argument or draw, multi-line values (tensors)
  indented under their name.
- ``not_implemented`` / ``unusable_output``: the message of a check that failed
  because a function is still the handout's stub, or because the check's own
  code could not use what the student's function returned (never phrased as
  the student's exception).
- ``add_root_cause_hints``: a failure caused elsewhere points there. An
  exception names the student function it was raised in (from the worker's
  traceback); a wrong value names the lowest-level functions it calls that
  fail their own checks (from the static call graph, in linear time).

The judge never runs student code; ``StudentModule`` reads the source with
``ast`` only. Tracebacks come from the worker, so they are untrusted text:
parsed with anchored regexes, and only ever shown back to the student.
"""
from __future__ import annotations

import ast
import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .compare import describe, hanging
from .pysource import parse

if TYPE_CHECKING:
    from .checks import Call
    from .client import StudentError
    from .judge import CheckResult


# ---------------------------------------------------------------------- counterexamples

_CALL_NOTE = ("Falsifying", "Failing")  # "Falsifying example: body(" (older hypothesis), "Failing test case: body("
_DRAW_NOTE = re.compile(r"Draw (\d+)(?: \(([^()]*)\))?: ")  # "Draw 1: ..." / "Draw 1 (q): ..."
_ARGUMENT = re.compile(r"\s*(\w+)=")


def counterexample(exc: BaseException) -> str:
    """The shrunk example hypothesis attached to ``exc``, one ``name = value`` line each
    (the ``student`` argument and ``st.data()`` itself left out); "" when there is none."""
    fields = example_fields(getattr(exc, "__notes__", []))
    if not fields:
        return ""
    return "\n\nCounterexample (smallest found):\n" + "\n".join(hanging(f"  {name} = ", value) for name, value in fields)


def example_fields(notes: list[str]) -> list[tuple[str, str]]:
    """(name, value) for each argument of the failing call and each ``data.draw``, in order.

    A labelled draw (``data.draw(strategy, label="q")``) is named by its label,
    an unlabelled one "draw N".
    """
    fields: list[tuple[str, str]] = []
    for note in notes:
        draw = _DRAW_NOTE.match(note)
        if draw:
            fields.append((draw[2] or f"draw {draw[1]}", note[draw.end():].strip()))
        elif note.startswith(_CALL_NOTE) and "(" in note and note.rstrip().endswith(")"):
            fields += call_arguments(note)
    return fields


def call_arguments(note: str) -> list[tuple[str, str]]:
    """The keyword arguments of hypothesis' ``Falsifying example: body(a=..., b=...)`` note.

    Hypothesis puts each argument on its own line, indented, with multi-line
    values continued at that indentation; the indentation is taken off again.
    """
    inside = note[note.index("(") + 1:note.rstrip().rindex(")")]
    fields = []
    for piece in split_arguments(inside):
        match = _ARGUMENT.match(piece)
        if not match:
            continue
        name, value = match[1], piece[match.end():].rstrip()
        indent = len(piece[:match.start(1)].rpartition("\n")[2])
        lines = value.split("\n")
        value = "\n".join([lines[0], *(_dedent(line, indent) for line in lines[1:])])
        if name == "student" or (name == "data" and value.startswith("data(")):
            continue
        fields.append((name, value))
    return fields


def split_arguments(text: str) -> list[str]:
    """The top-level comma-separated pieces of a call's argument text: brackets and
    quotes are respected, and ``# comments`` hypothesis may add are dropped."""
    pieces, current, depth, quote, i = [], [], 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                current.append(text[i:i + 2])
                i += 2
                continue
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            pieces.append("".join(current))
            current, i = [], i + 1
            continue
        elif ch == "#" and depth == 0:
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        current.append(ch)
        i += 1
    pieces.append("".join(current))
    return [p for p in pieces if p.strip()]


def _dedent(line: str, indent: int) -> str:
    """``line`` without up to ``indent`` leading spaces."""
    return line[min(indent, len(line) - len(line.lstrip(" "))):]


# ---------------------------------------------------------------------- tracebacks and the student's source

_FRAME = re.compile(r'^\s*File "([^"\n]+)", line (\d+), in (\S+)\s*$')


class Frame(NamedTuple):
    """One frame of the worker's traceback (trimmed to the student's own files)."""

    file: str  # "vae.py"
    line: int
    function: str  # as the traceback names it; ``StudentModule.qualify`` makes it ``Class.method``
    code: str = ""  # the source line, when the traceback shows it

    @property
    def where(self) -> str:
        return f"{self.file}, line {self.line}"


def student_frames(traceback: str) -> list[Frame]:
    """The frames of a worker traceback, outermost first (the last one raised)."""
    frames: list[Frame] = []
    lines = traceback.splitlines()
    for i, text in enumerate(lines):
        match = _FRAME.match(text)
        if match:
            code = lines[i + 1].strip() if i + 1 < len(lines) and not _FRAME.match(lines[i + 1]) else ""
            frames.append(Frame(match[1], int(match[2]), match[3], code))
    return frames


@dataclass
class StudentModule:
    """What the judge reads from the student's module source without running it."""

    file: str  # "vae.py"
    calls: dict[str, set[str]] = field(default_factory=dict)  # top-level def/class -> the other names it refers to
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (first, last line, qualified name), outer first

    @classmethod
    def parse(cls, source: bytes, file: str) -> "StudentModule":
        """Top-level functions and classes (and classes' methods) with their lines and the names they use."""
        module = cls(file)
        try:
            tree = parse(source, file)
        except (SyntaxError, ValueError):  # TooComplex included
            return module
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                module.calls[node.name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - {node.name}
                module.spans.append((node.lineno, node.end_lineno or node.lineno, node.name))
                if isinstance(node, ast.ClassDef):
                    module.spans += [(m.lineno, m.end_lineno or m.lineno, f"{node.name}.{m.name}") for m in node.body
                                     if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
        return module

    def qualify(self, frame: Frame) -> Frame:
        """``frame`` named by the function or method of this module that holds its line
        (``AffineCoupling.forward``, not ``forward``; a nested function by its outer one)."""
        if frame.file != self.file:
            return frame
        holding = [name for first, last, name in self.spans if first <= frame.line <= last]
        return frame._replace(function=holding[-1]) if holding else frame


def raising_frame(error: "StudentError", module: StudentModule) -> Frame | None:
    """Where in the student's code ``error`` was raised: its deepest student frame."""
    frames = student_frames(error.traceback)
    return module.qualify(frames[-1]) if frames else None


def is_not_implemented(error: "StudentError", frame: Frame | None) -> bool:
    """The function is still a stub: it raised NotImplementedError itself (not torch
    saying an operation is not implemented for some dtype)."""
    if not re.match(r"NotImplementedError(:|$)", error.message):
        return False
    return frame is None or not frame.code or frame.code.startswith("raise")


def not_implemented(check_function: str, frame: Frame | None, called: str) -> tuple[str, str]:
    """(message, brief) of a check that failed because a function is still a stub.

    ``called``: the function the check called. The brief is the one line the
    report shows for all the checks of a function that fail this way.
    """
    stub = frame.function if frame else called
    where = f" at {frame.where}" if frame else ""
    if same_function(stub, check_function):
        return f"{check_function} is not implemented yet (it raises NotImplementedError{where}).", "not implemented yet"
    return (f"{check_function} needs {stub}, which is not implemented yet (NotImplementedError{where}).",
            f"needs {stub}, which is not implemented yet")


def unusable_output(exc: Exception, call: "Call | None") -> str:
    """The message of a check whose own code raised: what the student's last call
    returned, and why the check could not use it. Without a call, a grader error."""
    error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if call is None:
        return f"grader error in this check ({error}); please report it"
    returned = describe_returned(call.value)
    return (f"{call.function} returned {returned}, which the check could not use (computing with it raised "
            f"{error}). This error is the check's, not your code's: it usually means the output's type or shape "
            "is not what the handout asks for.")


# ---------------------------------------------------------------------- root-cause hints


def add_root_cause_hints(results: list["CheckResult"], module: StudentModule) -> None:
    """Point a failure that another function causes at that function.

    An exception raised in another student function than the checked one
    names it (the traceback says where). A wrong value names the
    lowest-level functions the checked one calls, directly or not, that fail
    their own checks: ``negative_elbo_bound`` calling a broken ``kl_normal``
    fails too, and the student should fix ``kl_normal`` first.
    """
    failing = {top_level(r.check.function) for r in results if not r.passed and r.kind != "not run"}
    roots: dict[str, list[str]] = {}  # checked function -> its broken callees (computed once each)
    for r in results:
        if r.passed or r.gated_by or r.brief:
            continue  # a gated check's own property held; a brief already says what to do
        if r.raised_in is not None:
            r.output += raised_elsewhere_hint(r.check.function, r.raised_in, failing)
            continue
        fn = top_level(r.check.function)
        if fn not in roots:
            roots[fn] = broken_callees(fn, module.calls, failing)
        if roots[fn]:
            names = ", ".join(roots[fn])
            which = "which also fails its own checks" if len(roots[fn]) == 1 else "which also fail their own checks"
            r.output += f"\n\nHint: {r.check.function} calls {names}, {which}; fix {names} first."


def raised_elsewhere_hint(checked: str, frame: Frame, failing: set[str]) -> str:
    """The hint of an exception raised in ``frame``; "" when that is the checked function itself."""
    if same_function(frame.function, checked):
        return ""
    text = f"\n\nHint: the error was raised in {frame.function} ({frame.where}), called from {checked}"
    if top_level(frame.function) in failing:
        return text + f"; {frame.function} also fails its own checks: fix it first."
    return text + ": look there first."


def broken_callees(fn: str, calls: dict[str, set[str]], failing: set[str]) -> list[str]:
    """The failing functions ``fn`` reaches in the call graph, lowest level first.

    One breadth-first walk finds what ``fn`` reaches; a second, backwards from
    those that fail, finds which of them reach another failing one. Those
    that do not are the lowest-level causes (when every failing one reaches
    another, through a cycle, all are named). Linear in the size of the graph.
    """
    reached = reachable(fn, calls) - {fn}
    culprits = reached & failing
    if not culprits:
        return []
    callers: dict[str, set[str]] = {}
    for caller in reached:
        for callee in calls.get(caller, ()):
            if callee in reached:
                callers.setdefault(callee, set()).add(caller)
    above = reachable_from_all(culprits, callers)  # functions that reach some culprit
    return sorted(culprits - above) or sorted(culprits)


def reachable(start: str, graph: dict[str, set[str]]) -> set[str]:
    """Every node reachable from ``start`` (``start`` included), breadth first."""
    return {start} | reachable_from_all({start}, graph)


def reachable_from_all(starts: set[str], graph: dict[str, set[str]]) -> set[str]:
    """Every node reachable in one or more steps from some node of ``starts``."""
    seen: set[str] = set()
    queue = deque(starts)
    while queue:
        for nxt in graph.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def same_function(raised: str, checked: str) -> bool:
    """Code of ``raised`` is the checked function's own: itself, or a method of the checked class."""
    return raised == checked or top_level(raised) == checked


def top_level(function: str) -> str:
    """The module-level name of a checked function: ``AffineCoupling`` for ``AffineCoupling.forward``."""
    return function.split(".")[0]


def describe_returned(value: object) -> str:
    """What a student call returned, in words: "a tensor of shape [3] and dtype float32"."""
    text = describe(value)
    return text if text == "None" else f"{'an' if text[0] in 'aeiou' else 'a'} {text}"
