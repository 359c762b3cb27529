"""Load a submission (.py, .ipynb, folder or .zip) into the files a worker runs.

The result is the student's module as ``<module>.py`` plus any helper files,
the file that was graded, and notes for the feedback (which file was graded,
what of a notebook did not run). A submission that cannot be used raises
``SubmissionError`` with one readable message naming the student's file.

Which file is graded (a note always says which, and lists the other candidates):

1. a file named exactly ``<module>.py`` or ``<module>.ipynb``: the shallowest
   one; at the same depth ``.py`` before ``.ipynb``; then alphabetical;
2. else a file whose name contains the module name, any case
   (``vae (2).ipynb``, ``my_vae.py``, ``VAE_final.py``), when there is one
   (or one ``.py`` and its ``.ipynb``: the ``.py``);
3. else the only ``.py`` or ``.ipynb`` file of the submission;
4. else an error listing what was found.

Files beside the graded one (and below it) travel with it as helpers.
Notebooks are converted by grader/notebook.py: what Jupyter would run,
less the top-level code the graded functions do not need.
"""
from __future__ import annotations

import ast
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

from .notebook import Converted, NotebookError, Origin, convert_notebook
from .pysource import TooComplex, parse

MAX_FILE_BYTES = 5 << 20  # a .py, a helper file, the code extracted from a notebook
MAX_NOTEBOOK_BYTES = 64 << 20  # a whole .ipynb: outputs (plots, images) included
MAX_TOTAL_BYTES = 100 << 20
MAX_FILES = 500
# A zip's list of entries (its central directory), skipped ones (__MACOSX, .git) included: zipfile
# parses all of it when it opens the archive, about 10 µs and 1 kB per entry (a 97 MB zip of
# 10^6 empty files took 40 s and 1 GB).
MAX_ZIP_DIRECTORY_BYTES = 4 << 20
SKIP_PARTS = {"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints"}
CODE_SUFFIXES = (".py", ".ipynb")


class SubmissionError(Exception):
    """A submission that cannot be loaded; the message says why, for the student."""


@dataclass
class Submission:
    module: str  # module name the checks import, e.g. "vae"
    files: dict[str, bytes]  # relative path -> contents; always holds f"{module}.py"
    notes: list[str] = field(default_factory=list)
    source: str = ""  # what was given, for the report
    graded_file: str = ""  # the file graded, as named in the submission (``vae (2).ipynb``, ``hw/vae.py``)
    notebook: Converted | None = None  # set when the graded file is a notebook: where each line came from

    def explain(self, text: str) -> str:
        """A worker's message or traceback, told in terms of the file the student gave.

        ``File "vae.py", line 40`` becomes ``File "vae.ipynb", code cell 3, line 2``;
        other mentions of ``vae.py`` name the graded file; a NameError (or a
        missing function) whose binding was dropped from a notebook says where
        and why.
        """
        shown = self.graded_file or f"{self.module}.py"
        generated = re.escape(f"{self.module}.py")
        if self.notebook is not None:
            line_map = self.notebook.line_map

            def frame(m: re.Match) -> str:
                origin = line_map.get(int(m.group(1)))
                where = origin.where() if origin else f"line {m.group(1)} of the converted notebook"
                return f'File "{shown}", {where}'

            text = re.sub(rf'File "(?:[^"\n]*/)?{generated}", line (\d+)', frame, text)
        if shown != f"{self.module}.py":
            text = re.sub(rf'(?<![\w./-]){generated}\b', lambda _: shown, text)
        return text + self._why_unbound(text)

    def _why_unbound(self, text: str) -> str:
        if self.notebook is None:
            return ""
        names = re.findall(r"name '(\w+)' is not defined", text)
        names += [n for group in re.findall(r"^([\w., ]+) is not defined in ", text, re.M) for n in group.split(", ")]
        why: list[str] = []
        for name in dict.fromkeys(names):
            if name in self.notebook.unbound:
                why.append(f"{name}: {self.notebook.unbound[name]}.")
            elif name in self.notebook.bound_at and "<module>" in text:
                at = self.notebook.bound_at[name]
                why.append(f"{name} is set in {at.where()}, below the code that uses it: when grading, the cells "
                           "run once, top to bottom (restart the kernel and run all to see the same).")
        return "\n\n" + "\n".join(why) if why else ""

    def defines_none(self, functions: Iterable[str]) -> str:
        """The problem when the module defines none of the assignment's functions."""
        try:
            tree = parse(self.files.get(f"{self.module}.py", b""))
            defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        except (SyntaxError, ValueError):
            defined = []
        what = ", ".join(defined[:15]) + (", ..." if len(defined) > 15 else "") if defined else "no function or class"
        return (f"{self.graded_file or self.module + '.py'} defines none of the functions this assignment grades "
                f"({', '.join(functions)}); it defines: {what}. Is it the file for this assignment?")


def load_submission(path: Path, module: str, *, functions: Iterable[str] | None = None) -> Submission:
    """Any supported submission -> Submission holding ``<module>.py``.

    functions: the graded names (config ``functions``), which decide what of a
    notebook's top-level code runs.
    """
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file or folder")
    if path.is_dir():
        files = _read_folder(path)
    elif path.suffix == ".zip":
        files = _read_zip(path)
    elif path.suffix in CODE_SUFFIXES:
        _check_file_size(path.name, path.stat().st_size)
        files = {path.name: path.read_bytes()}
    else:
        raise SubmissionError(f"{path.name}: expected {module}.py, {module}.ipynb, a folder or a .zip")
    sub = _from_files(files, module, functions)
    sub.source = str(path)
    return sub


def submission_from_bytes(data: bytes, module: str, *, functions: Iterable[str] | None = None,
                          name: str | None = None) -> Submission:
    """A single module file given as bytes (tests, batch tools); ``name`` ending in .ipynb: a notebook."""
    return _from_files({name or f"{module}.py": data}, module, functions)


# ------------------------------------------------------------------ which file


def choose_file(paths: Iterable[str], module: str) -> tuple[str, list[str]]:
    """(the file to grade, the other candidates): the rule in the module docstring."""
    code = sorted(p for p in paths if PurePosixPath(p).suffix in CODE_SUFFIXES)
    exact = [p for p in code if PurePosixPath(p).name in (f"{module}.py", f"{module}.ipynb")]
    similar = [p for p in code if module in PurePosixPath(p).stem.lower() and p not in exact]
    if exact:
        exact.sort(key=lambda p: (len(PurePosixPath(p).parts), p.endswith(".ipynb"), p))
        chosen = exact[0]
    elif len({PurePosixPath(p).with_suffix("") for p in similar}) == 1:
        chosen = min(similar, key=lambda p: p.endswith(".ipynb"))
    elif similar:
        raise SubmissionError(f"no file is named {module}.py or {module}.ipynb, and several could be it: "
                              f"{', '.join(similar[:10])}; rename the one to grade to {module}.py or {module}.ipynb")
    elif len(code) == 1:
        chosen = code[0]
    else:
        found = ", ".join(sorted(paths)[:10]) or "nothing"
        raise SubmissionError(f"no {module}.py or {module}.ipynb in the submission (found: {found})")
    return chosen, [p for p in exact + similar if p != chosen]


def _from_files(files: dict[str, bytes], module: str, functions: Iterable[str] | None) -> Submission:
    chosen, others = choose_file(files, module)
    path = PurePosixPath(chosen)
    note = f"graded {chosen}"
    if path.stem != module:
        note += f" as {module}{path.suffix} (no file is named {module}.py or {module}.ipynb)"
    if others:
        rule = (f"the rule: {module}.py before {module}.ipynb, the shallowest first, then alphabetical"
                if path.stem == module else "")
        note += f"; not graded: {', '.join(others[:10])}" + (f" ({rule})" if rule else "")
    root = path.parent
    out: dict[str, bytes] = {}
    for rel, data in files.items():  # keep helper files next to the module, re-rooted
        p = PurePosixPath(rel)
        if p == path or p.suffix == ".ipynb" or (root != PurePosixPath(".") and root not in p.parents):
            continue
        out[str(p.relative_to(root)) if root != PurePosixPath(".") else rel] = data
    sub = Submission(module=module, files=out, notes=[note], graded_file=chosen)
    data = files[chosen]
    if path.suffix == ".ipynb":
        _check_size(chosen, len(data), MAX_NOTEBOOK_BYTES)
        try:
            converted = convert_notebook(data, chosen, functions, max_code_bytes=MAX_FILE_BYTES)
        except NotebookError as exc:
            raise SubmissionError(str(exc)) from None
        if not converted.has_code:
            raise SubmissionError(f"{chosen} is an empty notebook: its code cells hold no code")
        code = converted.source.encode()
        if len(code) > MAX_FILE_BYTES:
            raise SubmissionError(f"the code of {chosen} is larger than {MAX_FILE_BYTES >> 20} MB")
        sub.notebook = converted
        sub.notes += converted.notes
        out[f"{module}.py"] = code
    else:
        _check_size(chosen, len(data), MAX_FILE_BYTES)
        if _is_empty(data, chosen):
            raise SubmissionError(f"{chosen} is an empty file" + (" (only comments)" if data.strip() else ""))
        out[f"{module}.py"] = data
    return sub


def _is_empty(data: bytes, name: str) -> bool:
    """No statement but comments; SubmissionError when Python could not even parse it (too deeply nested)."""
    try:
        return not parse(data, name).body
    except TooComplex as exc:
        raise SubmissionError(f"{name} could not be read: {exc.msg}") from None
    except (SyntaxError, ValueError):
        return False  # not Python: the import says why


def _check_file_size(name: str, size: int) -> None:
    _check_size(name, size, MAX_NOTEBOOK_BYTES if name.endswith(".ipynb") else MAX_FILE_BYTES)


def _check_size(name: str, size: int, limit: int) -> None:
    if size > limit:
        raise SubmissionError(f"{name} is larger than {limit >> 20} MB")


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
        if p.suffix in CODE_SUFFIXES:
            _check_file_size(rel.as_posix(), p.stat().st_size)
        files[rel.as_posix()] = p.read_bytes()
    return files


# What reading a broken or hostile zip raises: bad CRCs and sizes, corrupt streams, unknown
# compression methods, encrypted entries.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError)


def open_zip(path: Path) -> zipfile.ZipFile:
    """The archive, once its list of entries is known to be small enough to parse; SubmissionError else."""
    try:
        with open(path, "rb") as f:
            end = zipfile._EndRecData(f)  # the end record zipfile reads first: where the list is, how long
        if end and end[zipfile._ECD_SIZE] > MAX_ZIP_DIRECTORY_BYTES:
            raise SubmissionError(f"{path.name} lists too many files (its list of entries is larger than "
                                  f"{MAX_ZIP_DIRECTORY_BYTES >> 20} MB: a .git folder or a virtual environment?); "
                                  "zip only the files to grade")
        return zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise SubmissionError(f"{path.name} is not a readable zip file ({exc})") from None


def _read_zip(path: Path) -> dict[str, bytes]:
    archive = open_zip(path)
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
            limit = MAX_NOTEBOOK_BYTES if p.suffix == ".ipynb" else MAX_FILE_BYTES
            try:
                with archive.open(info) as f:  # read capped: the header's size may lie
                    data = f.read(limit + 1)
            except ZIP_ERRORS as exc:  # a size that lies shows as a bad CRC
                raise SubmissionError(f"{path.name}: entry '{name}' could not be read ({exc})") from None
            if len(data) > limit:
                raise SubmissionError(f"{path.name}: entry '{name}' is larger than {limit >> 20} MB")
            files[p.as_posix()] = data
    return files


def _check_sizes(count: int, total: int, name: str) -> None:
    if count > MAX_FILES:
        raise SubmissionError(f"the submission has more than {MAX_FILES} files")
    if total > MAX_TOTAL_BYTES:
        raise SubmissionError(f"the submission is larger than {MAX_TOTAL_BYTES >> 20} MB (at '{name}')")


__all__ = ["Origin", "Submission", "SubmissionError", "choose_file", "load_submission", "open_zip", "submission_from_bytes"]
