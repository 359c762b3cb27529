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
import textwrap
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


def with_comment(template: str, lines: list[str]) -> str:
    """The template with ``lines`` as a comment block right after its module docstring."""
    tree = ast.parse(template)
    end = tree.body[0].end_lineno if tree.body and _is_docstring(tree.body[0]) else 0
    source = template.splitlines(keepends=True)
    wrapped = [part for line in lines for part in (textwrap.wrap(line.replace("`", ""), 86,
                                                                   subsequent_indent="  " * line.startswith("- "))
                                                     or [""])]
    comment = "".join(f"# {part}".rstrip() + "\n" for part in wrapped)
    return "".join(source[:end]) + ("\n" if end else "") + comment + "".join(source[end:])


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


def self_check_help(assignment_id: str, module: str, *, public_points: float, hidden_points: float) -> list[str]:
    """The handout's paragraph on checking your work (Markdown lines; the .py gets them as comments)."""
    from .deploy.student import command_name

    return [
        "How to check your work before you submit (the public checks; nothing is sent anywhere), with the "
        f"course's student bundle (`pip install dgm_grade_student_{assignment_id}-*.whl`):",
        "",
        f"- in a notebook (Jupyter, Colab), in a new cell: `from dgm_grade.{assignment_id} import check; check()` "
        '(or `check("function_name")`): it checks the functions as your kernel defines them now;',
        f"- in a terminal: `{command_name(assignment_id)} {module}.py` (or `{module}.ipynb`).",
        "",
        f"What is graded: the functions below. The public checks ({public_points:g} points) are the ones you can "
        "see and run; hidden checks, which compare with the solution, grade the other "
        f"{hidden_points:g} points after you submit.",
    ]


def template_notebook(template: str, title: str, self_check: list[str] = ()) -> nbformat.NotebookNode:
    """One markdown cell (module docstring and ``self_check``), one cell of imports, one cell per definition."""
    tree = ast.parse(template)
    lines = template.splitlines()
    nb = nbformat.v4.new_notebook()
    doc = ast.get_docstring(tree)
    help_text = "\n".join(self_check) or "Implement every function below, then check your work."
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}\n\n{doc or ''}\n\n{help_text}"))
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

    assignment = load_assignment(assignment_id)
    config = assignment.config
    reference = importlib.import_module(f"reference.{config.module}")
    template = template_source(Path(reference.__file__).read_text())
    public = sum(c.points for c in assignment.public_checks)
    help_lines = self_check_help(assignment_id, config.module, public_points=public,
                                 hidden_points=assignment.max_score - public)
    out_dir = Path(out_dir or ASSIGNMENTS_DIR / assignment_id / "handout")
    out_dir.mkdir(parents=True, exist_ok=True)
    py, ipynb = out_dir / f"{config.module}.py", out_dir / f"{config.module}.ipynb"
    py.write_text(with_comment(template, help_lines))
    nb = template_notebook(template, config.title, help_lines)
    for i, cell in enumerate(nb.cells):  # stable ids keep regenerated notebooks byte-identical
        cell["id"] = f"cell-{i}"
    ipynb.write_text(nbformat.writes(nb) + "\n")
    return [py, ipynb]
