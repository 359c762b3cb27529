"""A notebook -> the module a worker imports, run the way Jupyter would run it.

1. Every code cell goes through IPython's own input transformation
   (``TransformerManager.transform_cell``, what Jupyter runs): magics,
   ``!cmd`` and ``?`` help become ``get_ipython()`` calls; nothing is guessed
   from text, so a comment or a docstring ending in ``?`` stays code.
2. Of those calls, the ones whose body is Python run it: ``%%time`` and
   ``%%capture`` cells (the body is transformed again, it may hold magics
   itself) and ``%time stmt``. Everything else that needs IPython (shell
   escapes, ``x = !ls``, ``%pip``, ``%matplotlib``, help, other cell magics)
   is dropped with a note. A cell that does not compile is dropped whole,
   with a note, as Jupyter would stop there.
3. Cells keep document order (a top-to-bottom re-run). Of the top-level
   statements, those the graded functions reach run: start from the graded
   names; keep every statement that binds a needed name (def, class,
   assignment, import, a compound statement), mutates one
   (``CONFIG["beta"] = 2``, ``LAYERS.append(...)``) or calls a function that
   sets one through ``global``; add the global names those statements read
   (``symtable``: decorators, defaults, bases, function and class bodies);
   repeat to a fixpoint. The rest (training loops, plots, downloads) is
   dropped with one note per statement. Imports nothing reaches run inside
   ``try`` (an image without the package cannot break grading), or are
   dropped with a note when the package is not installed here. Docstrings
   and ``from __future__`` imports are kept. Long cells are transformed one
   logical line at a time (``_transform``), which gives IPython's text in
   linear time.
4. The result remembers where each generated line came from (code cell,
   line, the student's text) and why names it could not bind were dropped,
   so errors speak of the notebook, not of a generated file.
"""
from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import re
import symtable
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .pysource import PARSER_LIMITS, TooComplex, parse

RUN_CELL_MAGICS = {"time", "capture"}  # cell magics whose body Jupyter runs in the notebook's namespace
RUN_LINE_MAGICS = {"time"}  # line magics whose argument Jupyter runs as a statement
HELP_MAGICS = {"pinfo", "pinfo2", "psearch"}
MAX_DROP_NOTES = 30  # notes on dropped top-level statements, then one line with the count
MAX_NOTES = 100  # notes of any kind (a note per magic, say), then one line with the count
# Converting costs about half a millisecond per cell and per top-level statement, a tenth of that
# per line: a notebook of 10^5 one-line cells took a minute. Real notebooks hold hundreds.
MAX_CELLS = 5_000
MAX_LINES = 20_000  # of code, over every cell (IPython's transformation costs per line)
MAX_STATEMENTS = 10_000


class NotebookError(Exception):
    """The notebook cannot be read at all; the message is for the student."""


@dataclass(frozen=True)
class Origin:
    """Where a line of the generated module came from."""

    cell: int  # code cell number, from 1, in document order
    line: int  # line in that cell, from 1
    text: str  # the line as the student wrote it

    def where(self) -> str:
        return f"code cell {self.cell}, line {self.line}"

    def quoted(self) -> str:
        text = self.text.strip()
        return f"`{text if len(text) <= 70 else text[:67] + '...'}`"


@dataclass
class Converted:
    source: str  # the module
    notes: list[str]  # what did not run, and why
    line_map: dict[int, Origin]  # line of `source` (from 1) -> where it came from
    unbound: dict[str, str] = field(default_factory=dict)  # name -> why the code binding it did not run
    bound_at: dict[str, Origin] = field(default_factory=dict)  # name -> first kept statement binding it
    has_code: bool = False  # some code cell holds more than blank lines and comments


@dataclass
class _Statement:
    node: ast.stmt
    text: str  # runnable on its own (dedented)
    origins: list[Origin]  # one per line of text
    binds: set[str] = field(default_factory=set)
    loads: set[str] = field(default_factory=set)
    mutates: set[str] = field(default_factory=set)
    sets_globals: set[str] = field(default_factory=set)  # a def's `global x; x = ...`: set when it is called

    @property
    def origin(self) -> Origin:
        return self.origins[0]

    @property
    def is_import(self) -> bool:
        return isinstance(self.node, (ast.Import, ast.ImportFrom))

    @property
    def is_future(self) -> bool:
        return isinstance(self.node, ast.ImportFrom) and self.node.module == "__future__"

    @property
    def is_docstring(self) -> bool:
        return (isinstance(self.node, ast.Expr) and isinstance(self.node.value, ast.Constant)
                and isinstance(self.node.value.value, str))


def read_notebook(data: bytes, name: str) -> list[str]:
    """The sources of a notebook's code cells, outputs never parsed beyond JSON."""
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise NotebookError(f"{name} is not a UTF-8 text file, so not a notebook") from None
    except ValueError as exc:
        raise NotebookError(f"{name} is not a readable notebook: {str(exc).splitlines()[0][:200]}") from None
    if isinstance(raw, dict):  # outputs (plots, images) can be megabytes: not needed, not validated
        if len(_raw_cells(raw)) > MAX_CELLS:
            raise NotebookError(f"{name} has {len(_raw_cells(raw)):,} cells, more than the {MAX_CELLS:,} the grader "
                                "reads; merge cells or submit a .py file")
        for cell in _raw_cells(raw):
            if isinstance(cell, dict) and "outputs" in cell:
                cell["outputs"] = []
    import nbformat  # here: a .py submission never needs it, and importing it takes a tenth of a second

    try:
        cells = nbformat.reads(json.dumps(raw), as_version=4).cells
    except Exception as exc:  # nbformat raises several types for a broken schema
        cells = _lenient_cells(raw)  # a missing key Jupyter would repair (cell metadata, say) is no reason to fail
        if cells is None:
            raise NotebookError(f"{name} is not a readable notebook: {str(exc).splitlines()[0][:200]}") from None
    return [c.get("source", "") for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]


def _lenient_cells(raw: object) -> list[dict] | None:
    """The cells of a notebook nbformat refuses, when each still has a type and a text source."""
    cells = raw.get("cells") if isinstance(raw, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) and "cell_type" in c for c in cells):
        return None
    out = []
    for c in cells:
        source = c.get("source", "")
        if isinstance(source, list) and all(isinstance(part, str) for part in source):
            source = "".join(source)
        if not isinstance(source, str):
            return None
        out.append({"cell_type": c["cell_type"], "source": source})
    return out


def _raw_cells(raw: dict) -> list:
    cells = raw.get("cells")
    if isinstance(cells, list):
        return cells
    sheets = raw.get("worksheets")  # nbformat 3
    return [c for s in sheets if isinstance(s, dict) for c in s.get("cells", [])] if isinstance(sheets, list) else []


def convert_notebook(data: bytes, name: str, functions: Iterable[str] | None = None, *,
                     max_code_bytes: int | None = None) -> Converted:
    """Notebook bytes -> the module to grade (see the module docstring).

    functions: the graded names (``config.functions``); without them every
    top-level function and class counts as graded. max_code_bytes: refuse
    (NotebookError) when the code cells hold more, before converting them.
    """
    cells = read_notebook(data, name)
    if max_code_bytes is not None and sum(len(c.encode()) for c in cells) > max_code_bytes:
        raise NotebookError(f"the code of {name} is larger than {max_code_bytes >> 20} MB")
    lines = sum(c.count("\n") + 1 for c in cells)
    if lines > MAX_LINES:
        raise NotebookError(f"the code cells of {name} hold {lines:,} lines, more than the {MAX_LINES:,} the grader "
                            "converts; submit a .py file")
    converter = _Converter(name)
    for number, source in enumerate(cells, start=1):
        lines = source.splitlines()
        converter.run(source, [Origin(number, i + 1, text) for i, text in enumerate(lines)])
    converted = converter.finish(functions)
    converted.has_code = any(line.strip() and not line.lstrip().startswith("#") for c in cells for line in c.splitlines())
    return converted


# ------------------------------------------------------------------ IPython's transformation


_manager = None


def _transform(text: str, origins: list[Origin]) -> tuple[list[str], list[Origin]]:
    """``TransformerManager.transform_cell``, with its token transforms run one logical line at a time;
    returns the Python lines and, for each, the student's line it came from.

    IPython re-tokenises the whole cell after each token transform (its own comment: fine
    for short cells), so a long cell with many magics costs its length times
    their number; each token transform (``%magic``, ``!cmd``, ``x = !cmd``,
    ``obj?``) acts within one logical line, so running them per logical line
    (as IPython's tokenizer groups them) gives the same text in linear time.
    """
    global _manager
    from IPython.core.inputtransformer2 import TransformerManager

    if _manager is None:
        _manager = TransformerManager()
    if not text.endswith("\n"):
        text += "\n"
    before = text.splitlines(keepends=True)
    lines = before
    for transform in _manager.cleanup_transforms + _manager.line_transforms:
        lines = transform(lines)
    if len(lines) == len(before):  # prompts and a common indent are stripped in place
        line_origin = origins[: len(lines)]
    else:  # a cell magic (one line) or a change we do not know: align the texts
        line_origin = _align([ln.rstrip("\n") for ln in before], [ln.rstrip("\n") for ln in lines], origins)
    out: list[str] = []
    out_origin: list[Origin] = []
    start = 0
    for group in _logical_lines(lines):
        group_origin = line_origin[start : start + len(group)]
        start += len(group)
        special = any(c in "%!?" for c in "".join(group)) or group[0].lstrip()[:1] in (",", ";", "/")
        new = _manager.do_token_transforms(group) if special else group
        new = "".join(new).splitlines()
        out += new
        out_origin += [group_origin[min(i, len(group_origin) - 1)] for i in range(len(new))]
    return out, out_origin


def _logical_lines(lines: list[str]) -> list[list[str]]:
    """``lines`` cut between logical lines (a statement with its bracketed or string continuation)."""
    from IPython.core.inputtransformer2 import make_tokens_by_line

    groups: list[list[str]] = []
    start = 0
    for tokens in make_tokens_by_line(lines):
        end = min(max(t.end[0] for t in tokens), len(lines))
        if end > start:
            groups.append(lines[start:end])
            start = end
    if start < len(lines):
        groups.append(lines[start:])
    return groups


def _align(before: list[str], after: list[str], origins: list[Origin]) -> list[Origin]:
    """For each transformed line, the original line it came from (IPython rewrites lines in place,
    joins continued magic lines, removes leading blank lines and a common indent)."""
    out: list[Origin] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for j in range(j1, j2):
            i = min(i1 + (j - j1), max(i2 - 1, i1), len(origins) - 1)
            out.append(origins[i])
    return out


def _ipython_call(node: ast.expr | None) -> tuple[str, list] | None:
    """``get_ipython().method(*constants)`` -> (method, [constant values])."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython"):
        return node.func.attr, [a.value if isinstance(a, ast.Constant) else None for a in node.args]
    return None


def _uses_ipython(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "get_ipython" for n in ast.walk(node))


def _what(method: str, args: list) -> str:
    """What an IPython call is, for a note."""
    if method in ("system", "getoutput"):
        return "a shell command"
    if method == "run_line_magic" and args and args[0] in HELP_MAGICS:
        return "IPython help"
    return "an IPython magic"


class _Converter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.statements: list[_Statement] = []
        self.notes: list[tuple[tuple[int, int], str]] = []  # sorted by (cell, line) at the end
        self.unbound: dict[str, str] = {}
        self.seen = 0  # top-level statements parsed, kept or not

    def note(self, origin: Origin, text: str) -> None:
        self.notes.append(((origin.cell, origin.line), text))

    def dropped_binding(self, names: Iterable[str], why: str) -> None:
        for n in names:
            self.unbound.setdefault(n, why)

    # ------------------------------------------------------------ one cell (or a cell magic's body)
    def run(self, text: str, origins: list[Origin]) -> None:
        lines = text.splitlines()
        blank = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
        if blank == len(lines) or not origins:
            return
        text, origins = "\n".join(lines[blank:]), origins[blank:]  # IPython drops leading blank lines
        try:
            lines, line_origin = _transform(text, origins)
        except Exception as exc:  # IPython refusing odd input: Jupyter would not run the cell either
            self.note(origins[0], f"{origins[0].where()}: the cell could not be read as IPython input "
                                  f"({type(exc).__name__}); it was skipped")
            return
        python = "\n".join(lines) + "\n"
        try:
            tree = parse(python, "<cell>", compile_too=True)
        except TooComplex as exc:  # nesting too deep for Python's parser: Jupyter could not run it either
            self.note(origins[0], f"code cell {origins[0].cell} could not be compiled: {exc.msg}; the whole cell "
                                  "was skipped")
            self.dropped_binding(_names_in_broken_code(o.text for o in origins),
                                 f"code cell {origins[0].cell} is nested too deeply for Python, so it did not run")
            return
        except SyntaxError as exc:
            self.syntax_error(exc, lines, line_origin, origins)
            return
        except ValueError as exc:  # a null byte
            self.note(origins[0], f"code cell {origins[0].cell} could not be compiled ({type(exc).__name__}: "
                                  f"{str(exc)[:100]}); the whole cell was skipped")
            return
        self.seen += len(tree.body)
        if self.seen > MAX_STATEMENTS:
            raise NotebookError(f"{self.name} has more than {MAX_STATEMENTS:,} top-level statements, more than the "
                                "grader converts; submit a .py file")
        for node in tree.body:
            self.statement(node, lines, line_origin, origins)

    def syntax_error(self, exc: SyntaxError, lines: list[str], line_origin: list[Origin],
                     origins: list[Origin]) -> None:
        at = line_origin[min(max((exc.lineno or 1) - 1, 0), len(line_origin) - 1)] if line_origin else origins[0]
        self.note(at, f"code cell {at.cell}: syntax error on line {at.line} ({exc.msg}): {at.quoted()}; "
                      "the whole cell was skipped, as Jupyter would")
        why = f"code cell {at.cell} has a syntax error on line {at.line} ({at.quoted()}), so it did not run"
        self.dropped_binding(_names_in_broken_code(o.text for o in origins), why)

    def statement(self, node: ast.stmt, lines: list[str], line_origin: list[Origin], origins: list[Origin]) -> None:
        origin = line_origin[node.lineno - 1]
        value = node.value if isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
        call = _ipython_call(value)
        if call is not None:
            method, args = call
            if method == "run_cell_magic" and len(args) == 3 and args[0] in RUN_CELL_MAGICS \
                    and isinstance(args[2], str) and isinstance(node, ast.Expr):
                start = origins.index(origin) + 1  # the body: every line after the magic's own line
                self.run(args[2], origins[start:start + len(args[2].splitlines())])
                return
            if method == "run_line_magic" and len(args) == 2 and args[0] in RUN_LINE_MAGICS \
                    and isinstance(args[1], str) and isinstance(node, ast.Expr):
                self.run(args[1], [origin] * max(1, len(args[1].splitlines())))
                return
            what = _what(method, args)
            if method == "run_cell_magic":
                self.note(origin, f"{origin.where()}: the {origin.quoted()} cell was not run (of the cell magics, "
                                  f"only {', '.join('%%' + m for m in sorted(RUN_CELL_MAGICS))} run when grading)")
                return
            self.note(origin, f"{origin.where()}: {origin.quoted()} not run ({what}; it cannot run when grading)")
            if not isinstance(node, ast.Expr):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[union-attr]
                names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                self.dropped_binding(names, f"{origin.where()} sets it with {what} ({origin.quoted()}), "
                                            "which does not run when grading")
            return
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        compound = first != node.lineno or not isinstance(node, _SIMPLE)
        if compound:
            text = "\n".join(lines[first - 1 : node.end_lineno])
        else:
            text = _source_segment(lines, node) or ast.unparse(node)
        stmt = _Statement(node, text, line_origin[first - 1 : first - 1 + len(text.splitlines())])
        if _uses_ipython(node):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.note(stmt.origin, f"{stmt.origin.where()}: {stmt.origin.quoted()} uses IPython "
                                       "(a magic or !command inside it), which fails when it runs while grading")
            else:
                self.note(stmt.origin, f"{stmt.origin.where()}: {stmt.origin.quoted()} not run "
                                       "(it uses a magic or !command, which cannot run when grading)")
                return
        self.statements.append(stmt)

    # ------------------------------------------------------------ the module
    def finish(self, functions: Iterable[str] | None) -> Converted:
        for stmt in self.statements:
            try:
                stmt.binds, stmt.loads, stmt.sets_globals = _scope_names(stmt.text)
            except (SyntaxError, ValueError, *PARSER_LIMITS):  # compiled within its cell; not alone: bind nothing
                pass
            stmt.mutates = _mutated_roots(stmt.node)
        imported = {n for s in self.statements if s.is_import for n in s.binds}
        if functions is None:
            needed = {n for s in self.statements if isinstance(s.node, _DEFS) for n in s.binds}
        else:
            needed = {f.split(".")[0] for f in functions}
        setters = {n: s.sets_globals for s in self.statements if s.sets_globals for n in s.binds}
        keep = [s.is_docstring or s.is_future for s in self.statements]
        changed = True
        while changed:  # fixpoint: keep what binds, mutates or calls a setter of a needed name; need what it reads
            changed = False
            for i, s in enumerate(self.statements):
                calls_setter = any(setters.get(n, set()) & needed for n in s.loads - s.binds)
                if not keep[i] and (s.binds & needed or s.mutates & (needed - imported) or calls_setter):
                    keep[i] = changed = True
                    needed |= s.loads
        for i, s in enumerate(self.statements):  # imports nothing needs: run when they can, in a try
            if not keep[i] and s.is_import:
                missing = _missing_modules(s.node)
                if missing:
                    self.note(s.origin, f"{s.origin.where()}: {s.origin.quoted()} not run ({', '.join(missing)} "
                                        "is not installed in the grader, and no graded function uses it)")
                else:
                    keep[i] = True
        dropped = [s for i, s in enumerate(self.statements) if not keep[i] and not s.is_import]
        for s in dropped[:MAX_DROP_NOTES]:
            self.note(s.origin, f"{s.origin.where()}: {s.origin.quoted()} not run (top-level code "
                                "no graded function needs)")
        if len(dropped) > MAX_DROP_NOTES:
            last = dropped[-1].origin
            self.notes.append(((last.cell, last.line + 1), f"... and {len(dropped) - MAX_DROP_NOTES} more "
                                                            "top-level statements no graded function needs, not run"))
        return self.emit(keep, needed)

    def emit(self, keep: list[bool], needed: set[str]) -> Converted:
        out: list[str] = [f"# {self.name}, converted for grading by dgm-grade (what ran; see the notes)"]
        line_map: dict[int, Origin] = {}

        def add(text: str, origins: list[Origin | None]) -> None:
            for line, origin in zip(text.splitlines(), origins):
                out.append(line)
                if origin is not None:
                    line_map[len(out)] = origin

        kept = [s for s, k in zip(self.statements, keep) if k]
        for s in kept:  # `from __future__` must come first
            if s.is_future:
                add(s.text, s.origins)
        cell = None
        bound_at: dict[str, Origin] = {}
        for s in kept:
            if s.is_future:
                continue
            if s.origin.cell != cell:
                cell = s.origin.cell
                add(f"# code cell {cell}", [None])
            if s.is_import and not (s.binds & needed):
                indented = "\n".join("    " + ln for ln in s.text.splitlines())
                add(f"try:\n{indented}\nexcept Exception:\n    pass", [None, *s.origins, None, None])
            else:
                add(s.text, s.origins)
            for n in s.binds:
                bound_at.setdefault(n, s.origin)
        notes = [text for _, text in sorted(self.notes, key=lambda item: item[0])]
        if len(notes) > MAX_NOTES:
            notes[MAX_NOTES:] = [f"... and {len(notes) - MAX_NOTES} more notes"]
        unbound = {n: why for n, why in self.unbound.items() if n not in bound_at}
        return Converted("\n".join(out) + "\n", notes, line_map, unbound, bound_at)


def _source_segment(lines: list[str], node: ast.stmt) -> str | None:
    """``ast.get_source_segment`` of one statement, looking only at its own lines of the cell (given
    the whole cell, it splits all of it on every call: quadratic over a cell of many statements)."""
    span = types.SimpleNamespace(lineno=1, end_lineno=node.end_lineno - node.lineno + 1,  # type: ignore[operator]
                                 col_offset=node.col_offset, end_col_offset=node.end_col_offset)
    return ast.get_source_segment("\n".join(lines[node.lineno - 1 : node.end_lineno]), span)  # type: ignore[arg-type]


_SIMPLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Import, ast.ImportFrom, ast.Pass, ast.Delete,
           ast.Assert, ast.Raise, ast.Global, ast.Nonlocal, ast.Return, ast.Break, ast.Continue)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _scope_names(text: str) -> tuple[set[str], set[str], set[str]]:
    """(module names a statement binds, global names it or any function/class in it reads,
    module names its functions set through ``global``)."""
    table = symtable.symtable(text, "<cell>", "exec")
    binds = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    loads = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    sets: set[str] = set()
    todo = list(table.get_children())
    while todo:
        child = todo.pop()
        loads |= {s.get_name() for s in child.get_symbols() if s.is_global() and s.is_referenced()}
        sets |= {s.get_name() for s in child.get_symbols() if s.is_declared_global() and s.is_assigned()}
        todo += child.get_children()
    return binds, loads, sets


def _mutated_roots(node: ast.stmt) -> set[str]:
    """Names a statement changes without rebinding: ``A[k] = v``, ``A.x += 1``, ``A.append(v)``
    (not looking into function or class bodies, which do not run at import)."""
    roots: set[str] = set()

    def add(target: ast.expr) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                add(element)
            return
        if isinstance(target, ast.Starred):
            return add(target.value)
        if not isinstance(target, (ast.Attribute, ast.Subscript)):
            return
        while isinstance(target, (ast.Attribute, ast.Subscript)):
            target = target.value
        if isinstance(target, ast.Name):
            roots.add(target.id)

    todo: list[ast.AST] = [node]
    while todo:
        n = todo.pop()
        if n is not node and isinstance(n, (*_DEFS, ast.Lambda)):
            continue
        if isinstance(n, (ast.Assign, ast.Delete)):
            for t in n.targets:
                add(t)
        elif isinstance(n, (ast.AugAssign, ast.AnnAssign)):
            add(n.target)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            add(n.func)  # A.append(v), A.x.update(...): a method call may change A
        todo.extend(ast.iter_child_nodes(n))
    return roots


def _missing_modules(node: ast.stmt) -> list[str]:
    """Modules an import statement names that are not installed here (relative imports count as present)."""
    if isinstance(node, ast.ImportFrom):
        names = [] if node.level else [node.module or ""]
    else:
        names = [a.name for a in node.names]  # type: ignore[attr-defined]
    return [n for n in names if n and not _installed(n)]


def _installed(dotted: str) -> bool:
    """Whether a module can be found, without importing anything: the top-level package by
    ``find_spec``, one level below by looking in its folders (``google`` may exist, ``google.colab`` not)."""
    top, _, rest = dotted.partition(".")
    if top in sys.builtin_module_names:
        return True
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    sub = rest.partition(".")[0]
    locations = spec.submodule_search_locations
    if not sub or locations is None:
        return True
    return any((Path(loc) / sub).is_dir() or any(Path(loc).glob(f"{sub}.*")) for loc in locations)


_BINDING_LINE = re.compile(r"^(?:async\s+def|def|class)\s+(\w+)|^(\w+)\s*(?::[^=]*)?=(?!=)")


def _names_in_broken_code(lines: Iterable[str]) -> set[str]:
    """Names a cell that does not parse would have defined at top level (for error messages only)."""
    return {m.group(1) or m.group(2) for line in lines if (m := _BINDING_LINE.match(line))}
