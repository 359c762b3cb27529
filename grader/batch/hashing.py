"""The hashes that decide whether a re-run must grade a student again.

A grade depends on the submission's bytes and on everything else that goes into
judging it: the assignment's folder (config, checks, ``models.py``, equivalent
mutants), the reference the hidden checks compare with, the grader's own code, the
seed, the device and per-call timeout, and the versions of torch and hypothesis (a
different hypothesis draws different examples). ``inputs_hash`` covers all of that;
``submission_hash`` covers the submission. A record whose two hashes match today's is
not graded again (unless ``--regrade``).

The batch package itself (CSV, report, backends) decides no grade and is left out,
so improving the report does not regrade a class.
"""
from __future__ import annotations

import ast
import hashlib
from importlib import metadata
from pathlib import Path

import grader
import reference

from ..assignment import ASSIGNMENTS_DIR

GRADER_DIR = Path(grader.__file__).parent
REFERENCE_DIR = Path(reference.__file__).parent
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", "handout"}


def _tree_files(root: Path, *, skip: tuple[Path, ...] = ()) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not SKIPPED_PARTS & set(p.relative_to(root).parts)
                  and p.suffix != ".pyc" and not any(p.is_relative_to(s) for s in skip))


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def inputs_hash(assignment_id: str, *, seed: int | None, gpu: bool, timeout: float | None) -> str:
    """sha256 (hex) of everything but the submission that decides a grade (see the module docstring)."""
    digest = hashlib.sha256()
    roots = [(ASSIGNMENTS_DIR / assignment_id, ()), (REFERENCE_DIR, ()), (GRADER_DIR, (GRADER_DIR / "batch",))]
    for root, skip in roots:
        for path in _tree_files(root, skip=skip):
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    settings = (f"seed={seed}", f"device={'cuda' if gpu else 'cpu'}", f"timeout={timeout}",
                f"torch={_version('torch')}", f"hypothesis={_version('hypothesis')}", f"numpy={_version('numpy')}")
    digest.update("\0".join(settings).encode())
    return digest.hexdigest()


def submission_hash(path: Path) -> str:
    """sha256 (hex) of a submission: a file's bytes, or a folder's relative paths and bytes."""
    digest = hashlib.sha256()
    path = Path(path)
    if path.is_file():
        digest.update(path.read_bytes())
    else:
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{f.relative_to(path).as_posix()}\0".encode())
            digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


class _Normalise(ast.NodeTransformer):
    """Names and arguments renamed v0, v1, ... in order of appearance; docstrings dropped.

    Function and class names stay (the graded names must), and so do attributes
    (``torch.exp``): what is left is the program's shape, whatever its variable names.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._rename(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self._rename(node.arg)
        node.annotation = None
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]  # the docstring
        return super().generic_visit(node)


def ast_hash(source: bytes) -> str:
    """sha256 (hex) of the normalised AST of a module's source; "" when it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    try:
        tree = _Normalise().visit(tree)
        text = ast.dump(tree, annotate_fields=False, include_attributes=False)
    except RecursionError:
        return ""
    return hashlib.sha256(text.encode()).hexdigest()
