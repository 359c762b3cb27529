"""Who is in a batch: the submissions in the input folder, one per student.

Three layouts (``find_submissions``):

- a folder of files: ``alice.py``, ``bob.ipynb``, ``carol.zip`` (student id = file stem);
- a folder of folders or zips: ``alice/``, ``bob.zip`` (student id = entry name);
- Gradescope's "Export Submissions" folder: ``submission_metadata.yml`` beside one
  ``submission_<id>/`` folder per submission; the metadata gives each submitter's name,
  email and SID (a group submission lists them all).

Hidden entries (``.git``, ``.DS_Store``), ``__MACOSX`` and the batch's own output folder are
skipped. Student ids become folder names under OUTDIR, so they are made safe for a path and
unique.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GRADESCOPE_METADATA = "submission_metadata.yml"
SUBMISSION_SUFFIXES = (".py", ".ipynb", ".zip")


class RosterError(Exception):
    """The input folder cannot be read as a class (the message says why)."""


@dataclass(frozen=True)
class Entry:
    student: str  # safe, unique: the folder under OUTDIR
    path: Path  # the submission: a file, a folder or a zip
    name: str = ""
    email: str = ""
    sid: str = ""

    def source(self, root: Path) -> str:
        return str(self.path.relative_to(root))


def safe_id(text: str) -> str:
    """A name usable as one path component everywhere: letters, digits, ``._-``; never hidden or empty."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "student"
    return cleaned[:100]


def find_submissions(folder: Path, *, skip: Path | None = None) -> list[Entry]:
    """Every submission in ``folder``, sorted by student id (``skip``: the output folder, if inside)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RosterError(f"{folder}: not a folder (batch grades a folder of submissions)")
    if (folder / GRADESCOPE_METADATA).is_file():
        return _gradescope_export(folder)
    entries = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name == "__MACOSX" or (skip and _same(path, skip)):
            continue
        if path.is_dir() or path.suffix.lower() in SUBMISSION_SUFFIXES:
            entries.append((path.stem if path.is_file() else path.name, path))
    return _unique([Entry(student, path) for student, path in entries])


def _gradescope_export(folder: Path) -> list[Entry]:
    """Gradescope's export: ``{submission_<id>: {":submitters": [{":name", ":email", ":sid"}], ...}}``."""
    import yaml

    meta_file = folder / GRADESCOPE_METADATA
    try:
        metadata = yaml.safe_load(meta_file.read_text(encoding="utf-8", errors="replace")) or {}
    except yaml.YAMLError as exc:
        raise RosterError(f"{meta_file}: not readable as YAML ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(metadata, dict):
        raise RosterError(f"{meta_file}: expected a mapping of submission folders to their submitters")
    entries = []
    for key, info in metadata.items():
        path = folder / str(key)
        if not path.exists():
            continue  # listed but not exported (no file uploaded): nothing to grade
        submitters = (info or {}).get(":submitters") or [] if isinstance(info, dict) else []
        people = [s for s in submitters if isinstance(s, dict)]

        def field(name: str) -> str:
            return "; ".join(str(p.get(name) or "") for p in people if p.get(name))

        entries.append(Entry(safe_id(str(key)), path, field(":name"), field(":email"), field(":sid")))
    return _unique(sorted(entries, key=lambda e: e.student))


def _unique(entries: list[Entry]) -> list[Entry]:
    """Safe ids, with ``-2``, ``-3`` added where two entries would share a folder (alice.py and alice.zip)."""
    seen: dict[str, int] = {}
    out = []
    for e in entries:
        base = safe_id(e.student)
        n = seen.get(base.lower(), 0) + 1
        seen[base.lower()] = n
        out.append(Entry(base if n == 1 else f"{base}-{n}", e.path, e.name, e.email, e.sid))
    return out


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
