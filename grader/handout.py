"""Generate the student handout from reference/<module>.py.

The template keeps the module docstring, the imports, module constants and
every public function and class with its signature and docstring; bodies
become ``raise NotImplementedError``; private helpers (``_name``) are dropped.
Written as ``<module>.py`` and as a notebook ``<module>.ipynb`` (one cell per
function), into ``assignments/<id>/handout/``. A test regenerates both and
compares, so the committed handout never drifts from the reference.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import nbformat

TODO = "raise NotImplementedError  # TODO: your implementation"


def template_source(reference_source: str) -> str:
    """Reference module source -> template module source."""
    tree = ast.parse(reference_source)
    body: list[ast.stmt] = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if stmt.name.startswith("_"):
                continue
            body.append(_blank(stmt))
        else:
            body.append(stmt)
    pieces: list[str] = []
    for i, stmt in enumerate(body):
        if i == 0 and _is_docstring(stmt):  # as written: ast.unparse would make it one line of escapes
            pieces.append(ast.get_source_segment(reference_source, stmt) or ast.unparse(stmt))
            continue
        is_def = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        gap = "" if i == 0 else "\n\n\n" if is_def or isinstance(body[i - 1], ast.ClassDef | ast.FunctionDef) else "\n"
        if i == 1 and not is_def:
            gap = "\n\n"  # after the module docstring
        pieces.append(gap + ast.unparse(stmt))
    return "".join(pieces).replace("raise NotImplementedError('__TODO__')", TODO) + "\n"


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _blank(node: ast.stmt) -> ast.stmt:
    """Keep the signature and docstring; replace the body (methods of classes too)."""
    if isinstance(node, ast.ClassDef):
        node.body = [_blank(s) if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) else s
                     for s in node.body if not (isinstance(s, ast.FunctionDef) and s.name.startswith("_")
                                                and s.name != "__init__")]
        return node
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    doc = ast.get_docstring(node, clean=False)
    todo = ast.parse("raise NotImplementedError('__TODO__')").body[0]
    node.body = ([ast.Expr(ast.Constant(doc))] if doc is not None else []) + [todo]
    return node


def template_notebook(template: str, title: str) -> nbformat.NotebookNode:
    """One markdown cell (module docstring), one cell of imports, one cell per definition."""
    tree = ast.parse(template)
    lines = template.splitlines()
    nb = nbformat.v4.new_notebook()
    doc = ast.get_docstring(tree)
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}\n\n{doc or ''}\n\nImplement every function below, "
                                                  "then check your work: `dgm-grade check <this notebook>`."))
    header: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(getattr(stmt, "value", None), ast.Constant) and stmt is tree.body[0]:
            continue
        first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
        segment = "\n".join(lines[first - 1 : stmt.end_lineno])
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            if header:
                nb.cells.append(nbformat.v4.new_code_cell("\n".join(header)))
                header = []
            nb.cells.append(nbformat.v4.new_code_cell(segment))
        else:
            header.append(segment)
    if header:
        nb.cells.append(nbformat.v4.new_code_cell("\n".join(header)))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def write_handout(assignment_id: str, out_dir: Path | None = None) -> list[Path]:
    """Generate <module>.py and <module>.ipynb for an assignment; returns the paths."""
    from .assignment import ASSIGNMENTS_DIR, load_assignment

    config = load_assignment(assignment_id, hidden=False).config
    reference = importlib.import_module(f"reference.{config.module}")
    template = template_source(Path(reference.__file__).read_text())
    out_dir = Path(out_dir or ASSIGNMENTS_DIR / assignment_id / "handout")
    out_dir.mkdir(parents=True, exist_ok=True)
    py, ipynb = out_dir / f"{config.module}.py", out_dir / f"{config.module}.ipynb"
    py.write_text(template)
    nb = template_notebook(template, config.title)
    for i, cell in enumerate(nb.cells):  # stable ids keep regenerated notebooks byte-identical
        cell["id"] = f"cell-{i}"
    ipynb.write_text(nbformat.writes(nb) + "\n")
    return [py, ipynb]
