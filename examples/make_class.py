"""Make a class of generated hw2_vae submissions to batch-grade (tests, docs/batch.md, benchmarks).

    python examples/make_class.py OUTDIR [--students 40] [--seed 0] [--gradescope]

The class mixes what a TA meets (in this proportion, by a seeded draw):
correct work (the reference as .py, as a notebook, in a folder, in a zip), seeded
mutants of the reference (one edit each: buggy work), the blank handout, broken files
(a syntax error, a file that is not a zip), and hostile or faulty code (a call that
never returns, one that ends its process, one that exhausts memory, a name that is a
spreadsheet formula). ``--gradescope`` writes Gradescope's export layout instead:
``submission_<id>/`` folders and ``submission_metadata.yml`` with names, emails and SIDs.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = (ROOT / "reference" / "vae.py").read_text()
HANDOUT = (ROOT / "assignments" / "hw2_vae" / "handout" / "vae.py").read_text()
LME = "def log_mean_exp(x: torch.Tensor, dim: int) -> torch.Tensor:\n"


def faulty(body: str) -> str:
    """The reference whose log_mean_exp first runs ``body`` (one line)."""
    assert REFERENCE.count(LME) == 1
    return REFERENCE.replace(LME, LME + f"    {body}\n")


def notebook(source: str) -> str:
    """``source`` as a notebook of a few cells, with a training-like cell Jupyter would run and we skip."""
    import nbformat

    cells = [nbformat.v4.new_markdown_cell("# HW2: VAE"), nbformat.v4.new_code_cell(source),
             nbformat.v4.new_code_cell("%matplotlib inline\nfor step in range(3):\n    print(step)")]
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells))


def zipped(name: str, source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(name, source)
    return buffer.getvalue()


# (kind, weight, how to write it): each writer takes (folder, student id, rng) and writes one submission
def _py(source):
    return lambda folder, sid, rng: (folder / f"{sid}.py").write_text(source)


def _mutant(folder: Path, sid: str, rng: random.Random) -> None:
    from grader.mutate import mutants

    pool = _mutant.cache = getattr(_mutant, "cache", None) or mutants(REFERENCE)
    (folder / f"{sid}.py").write_text(rng.choice(pool).source)


def _notebook(folder: Path, sid: str, rng: random.Random) -> None:
    (folder / f"{sid}.ipynb").write_text(notebook(REFERENCE))


def _folder(folder: Path, sid: str, rng: random.Random) -> None:
    (folder / sid).mkdir()
    (folder / sid / "vae.py").write_text(REFERENCE)
    (folder / sid / "README.txt").write_text("my submission")


def _zip(folder: Path, sid: str, rng: random.Random) -> None:
    (folder / f"{sid}.zip").write_bytes(zipped("vae.py", REFERENCE))


def _not_a_zip(folder: Path, sid: str, rng: random.Random) -> None:
    (folder / f"{sid}.zip").write_bytes(b"this is not a zip file")


KINDS = {  # kind: (weight, writer)
    "correct": (4, _py(REFERENCE)),
    "correct notebook": (2, _notebook),
    "correct folder": (1, _folder),
    "correct zip": (1, _zip),
    "mutant": (6, _mutant),
    "blank": (1, _py(HANDOUT)),
    "syntax error": (1, _py(REFERENCE.replace("def kl_normal(", "def kl_normal(("))),
    "not a zip": (1, _not_a_zip),
    "hangs": (1, _py(faulty("while True: pass"))),
    "exits": (1, _py(faulty("import os; os._exit(3)"))),
    "memory": (1, _py(faulty("_ = [bytearray(1 << 30) for _ in range(64)]"))),
}
ORDER = ["correct", "mutant", "blank", "syntax error", "hangs", "exits", "correct notebook", "not a zip",
         "memory", "correct zip", "correct folder"]  # the first students: every kind early, even in a small class


def make_class(folder: Path, students: int = 40, *, seed: int = 0, gradescope: bool = False) -> dict[str, str]:
    """Write ``students`` submissions into ``folder``; returns student id -> kind."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names, weights = list(KINDS), [w for w, _ in KINDS.values()]
    kinds = {}
    metadata = {}
    for i in range(students):
        kind = ORDER[i] if i < len(ORDER) else rng.choices(names, weights)[0]
        sid = f"student{i:03d}"
        if gradescope:
            key = f"submission_{100000 + i}"
            (folder / key).mkdir()
            KINDS[kind][1](folder / key, "vae", rng)  # Gradescope keeps the uploaded file's name
            name = "=HYPERLINK(\"http://x\")" if i == 1 else f"Student {i}"
            metadata[key] = {":submitters": [{":name": name, ":sid": f"{900 + i}", ":email": f"s{i}@uni.edu"}],
                             ":created_at": "2026-11-28 10:00:00.000000000 -08:00", ":score": 0.0}
            kinds[key] = kind
        else:
            KINDS[kind][1](folder, sid, rng)
            kinds[sid] = kind
    if gradescope:
        import yaml

        (folder / "submission_metadata.yml").write_text(yaml.safe_dump(metadata, sort_keys=True))
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gradescope", action="store_true")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty")
    kinds = make_class(args.out, args.students, seed=args.seed, gradescope=args.gradescope)
    (args.out.parent / f"{args.out.name}.kinds.json").write_text(json.dumps(kinds, indent=1))
    print(f"wrote {len(kinds)} submissions to {args.out} (kinds: {args.out.name}.kinds.json beside it)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
