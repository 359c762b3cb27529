"""Load a submission (.py, .ipynb, folder or .zip) into the files a worker runs.

The result is the student's module as ``<module>.py`` plus any helper files,
and notes for the feedback (what was dropped from a notebook, say). A
submission that cannot be used raises ``SubmissionError`` with one readable
message; a notebook cell that does not parse is dropped with a note, so the
rest still grades.

Notebooks (nbformat): only code cells; IPython magics (``%``, ``%%``), shell
lines (``!``) and help (``?``) are dropped; of the top-level statements only
imports, function and class definitions and constant assignments are kept,
so a notebook that trains or downloads data at top level still grades.
"""
from __future__ import annotations

import ast
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

MAX_FILE_BYTES = 5 << 20
MAX_TOTAL_BYTES = 50 << 20
MAX_FILES = 500
SKIP_PARTS = {"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints"}


class SubmissionError(Exception):
    """A submission that cannot be loaded; the message says why, for the student."""


@dataclass
class Submission:
    module: str  # module name the checks import, e.g. "vae"
    files: dict[str, bytes]  # relative path -> contents; always holds f"{module}.py"
    notes: list[str] = field(default_factory=list)
    source: str = ""  # what was given, for the report


def load_submission(path: Path, module: str) -> Submission:
    """Any supported submission -> Submission holding ``<module>.py``."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file or folder")
    if path.is_dir():
        files = _read_folder(path)
    elif path.suffix == ".zip":
        files = _read_zip(path)
    elif path.suffix in (".py", ".ipynb"):
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SubmissionError(f"{path.name} is larger than {MAX_FILE_BYTES >> 20} MB")
        files = {f"{module}{path.suffix}": path.read_bytes()}
    else:
        raise SubmissionError(f"{path.name}: expected {module}.py, {module}.ipynb, a folder or a .zip")
    sub = _from_files(files, module)
    sub.source = str(path)
    return sub


def _from_files(files: dict[str, bytes], module: str) -> Submission:
    """Pick the module (a .py wins over a .ipynb; shallowest first) and convert notebooks."""
    candidates = sorted(
        (p for p in files if PurePosixPath(p).name in (f"{module}.py", f"{module}.ipynb")),
        key=lambda p: (len(PurePosixPath(p).parts), p.endswith(".ipynb")),
    )
    if not candidates:
        names = ", ".join(sorted(files)[:10]) or "nothing"
        raise SubmissionError(f"no {module}.py or {module}.ipynb in the submission (found: {names})")
    chosen = PurePosixPath(candidates[0])
    root = chosen.parent
    out: dict[str, bytes] = {}
    notes: list[str] = []
    for rel, data in files.items():  # keep helper files next to the module, re-rooted
        p = PurePosixPath(rel)
        if root != PurePosixPath(".") and root not in p.parents:
            continue
        new = p.relative_to(root) if root != PurePosixPath(".") else p
        if new.suffix == ".ipynb":
            continue
        out[str(new)] = data
    if chosen.suffix == ".ipynb":
        source, notes = notebook_to_module(files[str(chosen)], chosen.name)
        out[f"{module}.py"] = source.encode()
    return Submission(module=module, files=out, notes=notes)


# ------------------------------------------------------------------ notebooks


def notebook_to_module(data: bytes, name: str) -> tuple[str, list[str]]:
    """Notebook bytes -> (module source, notes on what was dropped)."""
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        raise SubmissionError(f"{name} is not a UTF-8 text file, so not a notebook") from None
    except Exception as exc:  # nbformat raises several types for broken JSON / schema
        raise SubmissionError(f"{name} is not a readable notebook: {str(exc).splitlines()[0][:200]}") from None
    kept: list[str] = []
    notes: list[str] = []
    code_cells = [c for c in nb.cells if c.get("cell_type") == "code"]
    for number, cell in enumerate(code_cells, start=1):
        text, dropped_lines = _strip_ipython(cell.source)
        if dropped_lines:
            notes.append(f"code cell {number}: dropped {dropped_lines} IPython magic/shell line(s)")
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            notes.append(f"code cell {number}: syntax error on line {exc.lineno} ({exc.msg}); the whole cell was skipped")
            continue
        body, dropped = [], []
        for stmt in tree.body:
            (body if _keep(stmt) else dropped).append(stmt)
        for stmt in dropped:
            notes.append(f"code cell {number}: dropped top-level `{_first_line(text, stmt)}` (only imports, definitions "
                         "and constant assignments run when grading)")
        if body:
            kept.append(f"# --- cell {number}\n" + "\n".join(_segment(text, s) for s in body))
    return "\n\n".join(kept) + "\n", notes


def _strip_ipython(source: str) -> tuple[str, int]:
    """Drop magics, shell escapes and help lines; a %% cell magic drops the whole cell."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return "", len(lines)
    out, dropped = [], 0
    for line in lines:
        s = line.lstrip()
        if s.startswith(("%", "!")) or (s.endswith("?") and not s.startswith("#")):
            dropped += 1
            out.append("")  # keep line numbers
        else:
            out.append(line)
    return "\n".join(out), dropped


def _keep(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return True  # a docstring
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
        return _is_constant(stmt.value)
    return False


def _is_constant(node: ast.expr) -> bool:
    """Literals and arithmetic on literals and names (``2 * math.pi``), no calls."""
    return not any(isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.Lambda,
                                  ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Subscript))
                   for n in ast.walk(node))


def _segment(text: str, stmt: ast.stmt) -> str:
    """The statement's source lines, decorators included."""
    first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
    return "\n".join(text.splitlines()[first - 1 : stmt.end_lineno])


def _first_line(text: str, stmt: ast.stmt) -> str:
    line = _segment(text, stmt).strip().splitlines()[0]
    return line if len(line) <= 60 else line[:57] + "..."


# ------------------------------------------------------------------ folders and zips


def _read_folder(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part in SKIP_PARTS or part.startswith(".") for part in rel.parts):
            continue
        if p.is_symlink():
            raise SubmissionError(f"{rel}: symbolic links are not allowed in a submission")
        if not p.is_file():
            continue
        total += p.stat().st_size
        _check_sizes(len(files) + 1, total, str(rel))
        files[rel.as_posix()] = p.read_bytes()
    return files


def _read_zip(path: Path) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{path.name} is not a readable zip file ({exc})") from None
    files: dict[str, bytes] = {}
    total = 0
    with archive:
        for info in archive.infolist():
            name = info.filename
            p = PurePosixPath(name)
            if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
                raise SubmissionError(f"{path.name}: entry '{name}' has an absolute path; zip the folder's contents")
            if ".." in p.parts:
                raise SubmissionError(f"{path.name}: entry '{name}' points outside the archive ('..')")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise SubmissionError(f"{path.name}: entry '{name}' is a symbolic link; links are not allowed")
            if info.is_dir() or any(part in SKIP_PARTS or part.startswith(".") for part in p.parts):
                continue
            total += info.file_size
            _check_sizes(len(files) + 1, total, name)
            with archive.open(info) as f:  # read capped: the header's size may lie
                data = f.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise SubmissionError(f"{path.name}: entry '{name}' is larger than {MAX_FILE_BYTES >> 20} MB")
            files[p.as_posix()] = data
    return files


def _check_sizes(count: int, total: int, name: str) -> None:
    if count > MAX_FILES:
        raise SubmissionError(f"the submission has more than {MAX_FILES} files")
    if total > MAX_TOTAL_BYTES:
        raise SubmissionError(f"the submission is larger than {MAX_TOTAL_BYTES >> 20} MB (at '{name}')")


def submission_from_bytes(data: bytes, module: str) -> Submission:
    """A single module file given as bytes (tests, batch tools)."""
    return _from_files({f"{module}.py": data}, module)


