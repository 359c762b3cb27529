"""The student bundle: what a course hands out so students can self-check one assignment.

``build_bundle(assignment_id, out_dir)`` writes two files into ``out_dir``:

    dgm_grade_student_<id>-<version>-py3-none-any.whl    the self-check, installable with pip
    <id>-handout.zip                                     the handout (<module>.py and <module>.ipynb)

The wheel is a distribution of its own (``dgm-grade-student-hw2-vae``) with its own
import package, ``dgm_grade.<id>``, so it never replaces or shadows a TA's
``dgm-grade`` (``grader``, ``assignments``, ``reference``), and bundles of several
assignments install side by side (``dgm_grade`` is a namespace package)::

    dgm_grade/<id>/__init__.py          check() for notebooks
    dgm_grade/<id>/__main__.py          python -m dgm_grade.<id> FILE
    dgm_grade/<id>/grader/...           the grader modules `check` needs (SELF_CHECK_MODULES)
    dgm_grade/<id>/assignments/<id>/    config.toml, checks_public.py and the files it imports,
                                        bundle.toml (the hidden checks' points, for the score line)

Deny by default: only the files listed or reached from checks_public.py go in;
never reference/, checks_hidden.py, equivalent_mutants.toml, alternatives/,
degenerate/, the authoring tools (handout, mutate, validate, degenerate), the
TA commands (cli, batch, deploy) or another assignment. Absolute imports of
``grader`` and ``assignments`` are rewritten to the bundle's package
(``rewrite_imports``); a public file importing ``reference`` is refused.

The wheel needs torch at least TORCH_MINIMUM (a student's Colab or laptop has its
own) and pins hypothesis to the version installed here: verdicts depend on it.
"""
from __future__ import annotations

import ast
import re
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from .wheel import DIST, BuildError, copy_package, judge_requirements, package_dir, pip_wheel, project_toml

TORCH_MINIMUM = "2.2"  # tested: the torch this dgm-grade pins (see docs/student.md)
PACKAGE = "dgm_grade"  # the namespace every bundle installs under: dgm_grade.<assignment id>
# grader/ files a self-check runs (paths relative to grader/; a folder means all of it).
SELF_CHECK_MODULES = (
    "__init__.py", "api.py", "assignment.py", "checks.py", "client.py", "compare.py", "config.py", "feedback.py",
    "judge.py", "notebook.py", "pysource.py", "report.py", "results.py", "selfcheck.py", "standby.py", "stopping.py",
    "strategies.py", "submission.py", "verify.py", "sandbox", "worker", "deploy/__init__.py", "deploy/image.py",
)
# dgm-grade's dependencies a self-check uses (torch and hypothesis are added with their own bounds);
# scikit-learn only where an assignment's public files import it.
STUDENT_DEPENDENCIES = ("numpy", "safetensors", "nbformat", "ipython", "pydantic", "rich", "scipy", "pyseccomp",
                        "tomli")
OPTIONAL_DEPENDENCIES = {"sklearn": "scikit-learn"}
VENDORED = ("grader", "assignments")  # top-level packages whose absolute imports point into the bundle


def distribution_name(assignment_id: str) -> str:
    """``dgm-grade-student-hw2-vae``: the bundle's name on pip."""
    return "dgm-grade-student-" + assignment_id.replace("_", "-")


def command_name(assignment_id: str) -> str:
    """``dgm-check-hw2-vae``: the bundle's console command."""
    return "dgm-check-" + assignment_id.replace("_", "-")


def build_bundle(assignment_id: str, out_dir: Path) -> list[Path]:
    """Write the student wheel and the handout zip of ``assignment_id`` into ``out_dir``; returns both paths."""
    from ..assignment import load_assignment

    assignment = load_assignment(assignment_id)  # UnknownAssignment / ConfigError for the CLI
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="dgm-student-") as tmp:
        src = Path(tmp) / "src"
        files = write_package(assignment, src / PACKAGE / assignment_id)
        (src / "README.md").write_text(_readme(assignment_id, assignment.config.module))
        (src / "pyproject.toml").write_text(_pyproject(assignment_id, _requirements(files, assignment.path)))
        wheel = pip_wheel(src, out_dir)
    handout = write_handout_zip(assignment.path / "handout", out_dir / f"{assignment_id}-handout.zip")
    return [wheel, handout]


def write_package(assignment, root: Path) -> list[str]:
    """The bundle's package ``dgm_grade/<id>/`` at ``root``: grader/'s self-check modules, the
    assignment's public files and bundle.toml, imports rewritten, and check() in __init__.py.
    Returns the names of the assignment's files it copied."""
    from ..assignment import BUNDLE_FILE, hidden_points

    copy_package(package_dir("grader"), root / "grader", keep=_is_self_check_module)
    target = root / "assignments" / assignment.id
    target.mkdir(parents=True)
    (root / "assignments" / "__init__.py").write_text('"""The assignment this bundle checks."""\n')
    files = public_files(assignment.path)
    for name in files:
        shutil.copy(assignment.path / name, target / name)
    (target / BUNDLE_FILE).write_text("# The points of the hidden checks, which this bundle leaves out (graded after "
                                      f"submission).\nhidden_points = {hidden_points(assignment.id):g}\n")
    for py in root.rglob("*.py"):
        py.write_text(rewrite_imports(py.read_text(), f"{PACKAGE}.{assignment.id}", path=py.relative_to(root)))
    (root / "__init__.py").write_text(_init_source(assignment.id, assignment.config.title))
    (root / "__main__.py").write_text("from .grader.selfcheck import main\n\nmain()\n")
    return files


def _is_self_check_module(relative: Path) -> bool:
    text = relative.as_posix()
    return any(text == m or text.startswith(m + "/") for m in SELF_CHECK_MODULES)


def public_files(assignment_dir: Path) -> list[str]:
    """config.toml, __init__.py, checks_public.py and every module of the assignment it imports
    (``from .models import ...``), transitively; a BuildError if one of them imports ``reference``."""
    todo, files = ["checks_public.py"], ["__init__.py", "config.toml"]
    while todo:
        name = todo.pop()
        if name in files:
            continue
        files.append(name)
        tree = ast.parse((assignment_dir / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                todo.append(node.module.split(".")[0] + ".py")
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(m == "reference" or m.startswith("reference.") for m in modules):
                raise BuildError(f"{assignment_dir / name} imports reference/: a public check must not (move the "
                                 "property to checks_hidden.py)")
    return sorted(files)


def rewrite_imports(source: str, package: str, *, path: Path | str = "<source>") -> str:
    """Point absolute imports of ``grader`` and ``assignments`` at ``package`` (``dgm_grade.hw2_vae``).

        from grader.checks import Checks     ->  from dgm_grade.hw2_vae.grader.checks import Checks
        import assignments as pkg            ->  import dgm_grade.hw2_vae.assignments as pkg
        import assignments                   ->  from dgm_grade.hw2_vae import assignments

    ``import grader.worker`` (binding ``grader``) has no faithful rewrite: a BuildError asks for a
    relative import instead.
    """
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, str, str]] = []  # (line index, old text, new text)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _vendored(node.module or ""):
            edits.append((node.lineno - 1, f"from {node.module}", f"from {package}.{node.module}"))
        elif isinstance(node, ast.Import) and any(_vendored(a.name) for a in node.names):
            [alias] = node.names if len(node.names) == 1 else [None]
            if alias is None or ("." in alias.name and alias.asname is None):
                raise BuildError(f"{path}, line {node.lineno}: use a relative import (or `import X as Y`) for "
                                 f"{', '.join(a.name for a in node.names)} so the student bundle can rename it")
            if alias.asname is None:
                edits.append((node.lineno - 1, f"import {alias.name}", f"from {package} import {alias.name}"))
            else:
                edits.append((node.lineno - 1, f"import {alias.name}", f"import {package}.{alias.name}"))
    for index, old, new in edits:
        line = lines[index]
        if old not in line:
            raise BuildError(f"{path}, line {index + 1}: cannot rewrite `{line.strip()}` (write it on one line)")
        lines[index] = line.replace(old, new, 1)
    return "".join(lines)


def _vendored(module: str) -> bool:
    return module.split(".")[0] in VENDORED


def _requirements(files: list[str], assignment_dir: Path) -> list[str]:
    """The bundle's dependencies: STUDENT_DEPENDENCIES as dgm-grade states them, torch >= TORCH_MINIMUM,
    hypothesis == the version installed here, and the optional ones the assignment's files import."""
    from packaging.requirements import Requirement

    wanted = set(STUDENT_DEPENDENCIES)
    for name in files:
        text = (assignment_dir / name).read_text() if name.endswith(".py") else ""
        wanted |= {dist for module, dist in OPTIONAL_DEPENDENCIES.items()
                   if re.search(rf"^\s*(from|import)\s+{module}\b", text, flags=re.M)}
    kept = [r for r in judge_requirements() if Requirement(r).name.lower() in wanted]
    return [f"torch>={TORCH_MINIMUM}", f"hypothesis=={metadata.version('hypothesis')}", *kept]


def _pyproject(assignment_id: str, requirements: list[str]) -> str:
    description = f"Self-check for {assignment_id}: the public checks of dgm-grade, without any solution"
    extra = f'description = "{description}"\nreadme = "README.md"\n'
    return project_toml(distribution_name(assignment_id), metadata.version(DIST), requirements, extra=extra) + f'''
[project.scripts]
{command_name(assignment_id)} = "{PACKAGE}.{assignment_id}.grader.selfcheck:main"

[tool.setuptools.packages.find]
include = ["{PACKAGE}*"]
namespaces = true

[tool.setuptools.package-data]
"*" = ["*.toml"]
'''


def _init_source(assignment_id: str, title: str) -> str:
    return f'''"""Self-check for {assignment_id} ({title}): the public checks, with no solution inside.

In a notebook:   from {PACKAGE}.{assignment_id} import check; check()   (or check("function_name"))
In a terminal:   {command_name(assignment_id)} your_file.py
"""
from .grader.selfcheck import check, main

__all__ = ["check", "main"]
'''


def _readme(assignment_id: str, module: str) -> str:
    return f"""# {distribution_name(assignment_id)}

Self-check for {assignment_id}: the public checks of dgm-grade (no solutions, no hidden checks).

    {command_name(assignment_id)} {module}.py        # or {module}.ipynb, a folder, a .zip

In Jupyter or Colab, in a cell of your notebook:

    from {PACKAGE}.{assignment_id} import check
    check()                   # or check("function_name")
"""


def write_handout_zip(handout_dir: Path, out: Path) -> Path:
    """The handout's .py and .ipynb files in a zip, at its root."""
    files = sorted(p for p in handout_dir.iterdir() if p.suffix in (".py", ".ipynb"))
    if not files:
        raise BuildError(f"{handout_dir} holds no handout (dgm-grade handout ID writes it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in files:
            z.write(path, path.name)
    return out
