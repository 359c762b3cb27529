"""The student bundle (grader/deploy/student.py): nothing secret inside, the same verdicts as `grade`.

1. Leaks: every assignment's bundle is built and unpacked, and its files are searched for
   every line of a reference or alternative solution's function bodies (and of the hidden-only
   helpers in closed_forms.py, which compute graded values by another route), every hidden check's
   id and name, every constant checks_hidden.py defines, and every equivalent mutant.
2. Same verdicts: hw2's bundle is installed in a fresh venv (its dependencies: this venv's,
   through a .pth, so no network) and grades the sample submissions and a few mutants of
   `validate --quick`; each public check passes there exactly when it passes in a TA's full
   grade. ``--student-bundle-all`` does it for every assignment.
3. The notebook: nbclient runs hw2's handout notebook (solved, buggy and blank) in a kernel
   of that venv; the last cell, ``from dgm_grade.hw2_vae import check; check()``, must show
   the HTML report.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

from grader.api import run_grading
from grader.assignment import assignment_ids, load_assignment
from grader.deploy.student import build_bundle, command_name
from grader.mutate import mutants
from grader.validate import EQUIVALENT_FILE, QUICK_MUTANTS, load_equivalents, quick_sample

pytestmark = pytest.mark.slow

# Lines of a solution that say nothing a student does not already know from the handout.
COMMON_LINES = {
    "c = kernel_size // 2": "the kernel's centre, which the handout states (c = k // 2)",
    "x, mean, log_var = torch.broadcast_tensors(x.double(), mean.double(), log_var.double())":
        "hw1's models.diag_normal_terms (a tolerance scale) casts its arguments like an alternative does",
}
TRIVIAL = re.compile(r"^(return \w+|return \(\w+(, \w+)*\)|\w+ = \w+|else:|try:|pass|raise NotImplementedError.*)$")
MIN_LINE = 12  # shorter lines (`x = x.double()`) are too common to mean a copied solution
LONG_LINE = 40  # a line this long found alone is a copy


# ---------------------------------------------------------------- what must not be inside


def normalised(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip()


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def code_lines(source: str) -> set[str]:
    """The module's code as ast.unparse spells it, one normalised line each, docstrings left out
    (so a copy is found however it was formatted)."""
    return {normalised(line) for line in ast.unparse(_without_docstrings(ast.parse(source))).splitlines()}


def solution_functions(path: Path) -> dict[str, set[str]]:
    """'file:function' -> the telling lines of its body, for every function of a solution file."""
    functions = {}
    for fn in ast.walk(_without_docstrings(ast.parse(path.read_text()))):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = {line for stmt in fn.body for line in map(normalised, ast.unparse(stmt).splitlines())}
            telling = {line for line in lines if len(line) >= MIN_LINE and not TRIVIAL.match(line)} - COMMON_LINES.keys()
            if telling:
                functions[f"{path.relative_to(ROOT)}:{fn.name}"] = telling
    return functions


def copied(telling: set[str], code: set[str]) -> set[str]:
    """The lines of a solution function found in ``code``, when they say it was copied: a line as
    long as LONG_LINE, or at least two lines making half of the function or more. (A single short
    line such as ``n = x.shape[0]`` or ``super().__init__()`` is common to any torch code.)"""
    hits = telling & code
    if any(len(line) >= LONG_LINE for line in hits) or (len(hits) >= 2 and 2 * len(hits) >= len(telling)):
        return hits
    return set()


def hidden_needles(assignment_id: str) -> dict[str, str]:
    """Text only the hidden side has -> what it is: the hidden checks' ids (but those a public check
    names as its value pin, ``requires=``) and names, the constants checks_hidden.py defines (their
    statements and long numbers), the equivalent mutants."""
    path = ROOT / "assignments" / assignment_id
    needles = {}
    checks = load_assignment(assignment_id).checks
    named_by_public = {pin for c in checks if not c.hidden for pin in c.requires}  # `requires=`: public on purpose
    for check in checks:
        if check.hidden:
            if check.id not in named_by_public:
                needles[check.id] = f"hidden check id ({assignment_id})"
            needles[check.name.split(": ", 1)[-1]] = f"hidden check name ({check.id})"
    for node in ast.parse((path / "checks_hidden.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            needles[normalised(ast.unparse(node))] = f"constant of {assignment_id}/checks_hidden.py"
            for c in ast.walk(node.value):
                if isinstance(c, ast.Constant) and isinstance(c.value, float) and len(repr(c.value)) >= 8:
                    needles[repr(c.value)] = f"number in {normalised(ast.unparse(node))[:60]}"
    for entry in load_equivalents(path / EQUIVALENT_FILE):
        needles[entry.id] = f"equivalent mutant id ({assignment_id})"
        needles[entry.reason] = f"equivalent mutant reason ({entry.id})"
    return needles


def solutions() -> dict[str, set[str]]:
    """The functions of every reference and alternative solution, and of the hidden-only helpers that compute
    a graded function's value by another route (closed_forms.py), all assignments (``solution_functions``)."""
    functions: dict[str, set[str]] = {}
    for path in (sorted((ROOT / "reference").glob("*.py")) + sorted(ROOT.glob("assignments/*/alternatives/*.py"))
                 + sorted(ROOT.glob("assignments/*/closed_forms.py"))):
        functions.update(solution_functions(path))
    return functions


def leaks(unpacked: Path, functions: dict[str, set[str]], needles: dict[str, str]) -> list[str]:
    """Every secret found in the files under ``unpacked``: 'file: what (the text)'."""
    found = []
    for path in sorted(p for p in unpacked.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        rel = path.relative_to(unpacked)
        if path.suffix == ".py":
            code = code_lines(text)
            found += [f"{rel}: body of {name} ({'; '.join(sorted(hits))[:200]})"
                      for name, telling in functions.items()
                      if (hits := copied(telling, code))]
        for needle, what in needles.items():
            pattern = rf"\b{re.escape(needle)}\b" if re.fullmatch(r"\w+", needle) else re.escape(needle)
            if re.search(pattern, text):
                found.append(f"{rel}: {what} ({needle[:80]})")
    return found


# ---------------------------------------------------------------- leak tests


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """Every assignment's bundle, built and unpacked: id -> folder (the wheel's files, the handout's under handout/)."""
    tmp = tmp_path_factory.mktemp("bundles")
    unpacked = {}
    for assignment_id in assignment_ids():
        wheel, handout = build_bundle(assignment_id, tmp / "dist")
        unpacked[assignment_id] = tmp / assignment_id
        with zipfile.ZipFile(wheel) as z:
            z.extractall(unpacked[assignment_id])
        with zipfile.ZipFile(handout) as z:
            z.extractall(unpacked[assignment_id] / "handout")
    return unpacked


def test_each_bundle_holds_its_own_package_and_public_files_only(bundles):
    for assignment_id, folder in bundles.items():
        files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        package = f"dgm_grade/{assignment_id}/"
        assert all(f.startswith((package, "dgm_grade_student_", "handout/")) for f in files), sorted(files)
        assignment_files = {f.rsplit("/", 1)[-1] for f in files if f.startswith(f"{package}assignments/{assignment_id}/")}
        assert {"checks_public.py", "config.toml", "bundle.toml"} <= assignment_files
        assert not assignment_files & {"checks_hidden.py", EQUIVALENT_FILE, "training.py", "closed_forms.py"}
        assert not [f for f in files if re.search(r"/(reference|alternatives|degenerate|batch)/|/(cli|validate|mutate|"
                                                    r"handout|degenerate|gradescope|student)\.py$", f)]
        others = [i for i in assignment_ids() if i != assignment_id]
        assert not [f for f in files if any(f"/{other}/" in f for other in others)]
        [meta] = [folder / f for f in files if f.endswith("METADATA")]
        requires = [line for line in meta.read_text().splitlines() if line.startswith("Requires-Dist:")]
        assert "Requires-Dist: torch>=2.2" in requires and not [r for r in requires if "torch==" in r]
        assert any(re.fullmatch(r"Requires-Dist: hypothesis==[\d.]+", r) for r in requires)


def test_no_solution_hidden_check_or_equivalent_mutant_is_in_any_bundle(bundles):
    functions = solutions()
    assert len(functions) > 100  # the scan has something to look for
    found = {i: leaks(folder, functions, {k: v for a in assignment_ids() for k, v in hidden_needles(a).items()})
             for i, folder in bundles.items()}
    assert not any(found.values()), "\n".join(f"{i}: {hit}" for i, hits in found.items() for hit in hits)


def test_the_leak_scan_finds_a_copied_solution_and_a_hidden_name(tmp_path):
    reference = (ROOT / "reference" / "vae.py").read_text()
    kl = next(n for n in ast.parse(reference).body if isinstance(n, ast.FunctionDef) and n.name == "kl_normal")
    (tmp_path / "helpers.py").write_text("def kl(a, b, c, d):\n" + "\n".join(
        "    " + line for line in ast.unparse(kl.body[1:]).splitlines()) + "\n")
    (tmp_path / "notes.txt").write_text("see kl_matches_reference\n")
    found = leaks(tmp_path, solutions(), hidden_needles("hw2_vae"))
    assert any("reference/vae.py:kl_normal" in f for f in found), found
    assert any("hidden check id" in f for f in found), found


def test_the_leak_scan_finds_a_hidden_only_helper(tmp_path):
    """A helper of closed_forms.py (a graded value by another route) copied into a public file is a leak."""
    source = (ROOT / "assignments" / "hw5_diffusion" / "closed_forms.py").read_text()
    helper = next(n for n in ast.parse(source).body
                  if isinstance(n, ast.FunctionDef) and n.name == "posterior_by_conditioning")
    (tmp_path / "models.py").write_text(ast.unparse(helper) + "\n")
    found = leaks(tmp_path, solutions(), {})
    assert any("closed_forms.py:posterior_by_conditioning" in f for f in found), found


# ---------------------------------------------------------------- same verdicts as grade


@pytest.fixture(scope="module")
def student_python(tmp_path_factory) -> Path:
    """The python of a fresh venv holding hw2's bundle (its dependencies come from this venv by a .pth)."""
    return install_bundle("hw2_vae", tmp_path_factory.mktemp("student-hw2"))


def install_bundle(assignment_id: str, tmp: Path) -> Path:
    wheel, _ = build_bundle(assignment_id, tmp / "dist")
    venv = tmp / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = venv.glob("lib/python3*/site-packages")
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # its .pth files (dgm-grade's) are not read
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                              "--no-deps", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    return venv / "bin" / "python"


def bundle_verdicts(python: Path, assignment_id: str, submission: Path, only: list[str] | None = None) -> dict:
    """check id -> passed, from the installed bundle (the run ``check()`` in a notebook makes)."""
    out = submission.parent / "report.json"
    command = [str(python), "-m", f"dgm_grade.{assignment_id}.grader.selfcheck", "--run", str(submission),
               "--assignment", assignment_id, "--report", str(out), "--sandbox", "process"]
    run = subprocess.run(command + (["--only", ",".join(only)] if only else []), capture_output=True, text=True,
                         timeout=900, cwd=submission.parent)
    assert out.is_file(), run.stderr[-3000:]
    return json.loads(out.read_text())["passed"]


def ta_verdicts(assignment_id: str, submission: Path, only: list[str] | None = None) -> dict:
    """check id -> passed for the public checks, in a TA's `dgm-grade grade` (public and hidden checks).

    A public consistency check whose value pin is a hidden check (``requires=``) scores in a grade
    only when that pin passes; a self-check cannot know, so there it counts as passed when its own
    property holds (grader/judge.py ``apply_requirements``; docs/student.md says so to students).
    """
    public = [c.id for c in load_assignment(assignment_id, hidden=False).checks if not only or c.function in only]
    # `grade --only` the public checks: with the checks they require, hidden pins included (the others,
    # a training run among them, would cost minutes and decide nothing here)
    grade = run_grading(submission=submission, assignment_id=assignment_id, hidden=True, sandbox="process",
                        only=public)
    hidden = {c.name for c in grade.assignment.checks if c.hidden}
    return {r.check.id: r.passed or bool(r.gated_by and set(r.gated_by) <= hidden)
            for r in grade.results if not r.check.hidden}


def samples(assignment_id: str) -> list[Path]:
    return sorted(p for p in (ROOT / "examples" / assignment_id).iterdir() if p.suffix in (".py", ".ipynb"))


def quick_mutants(assignment_id: str, n: int):
    """The first ``n`` mutants `validate --quick` grades."""
    assignment = load_assignment(assignment_id)
    listed = {e.id for e in load_equivalents(assignment.path / EQUIVALENT_FILE)}
    source = (ROOT / "reference" / f"{assignment.config.module}.py").read_text()
    return quick_sample([m for m in mutants(source) if m.id not in listed], n)


def test_the_bundle_imports_none_of_the_ta_packages(student_python, tmp_path):
    run = subprocess.run([str(student_python), "-c", "import importlib.util as u, dgm_grade.hw2_vae as b; "
                          "print([n for n in ('grader', 'reference', 'assignments') if u.find_spec(n)], b.check)"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.startswith("[] <function check"), run.stdout + run.stderr


# CI compares the two .py samples (a correct and a partly wrong one); --student-bundle-all adds the notebooks
# (their notebook reading is the TA tool's own code, tested in tests/test_notebook.py).
@pytest.mark.parametrize("sample", [p for p in samples("hw2_vae") if p.suffix == ".py"], ids=lambda p: p.name)
def test_the_bundle_gives_the_verdicts_of_grade_on_the_samples(student_python, sample, tmp_path):
    submission = tmp_path / sample.name
    submission.write_bytes(sample.read_bytes())
    assert bundle_verdicts(student_python, "hw2_vae", submission) == ta_verdicts("hw2_vae", submission)


@pytest.mark.parametrize("mutant", quick_mutants("hw2_vae", 3), ids=lambda m: f"{m.function}-{m.operator}")
def test_the_bundle_gives_the_verdicts_of_grade_on_mutants(student_python, mutant, tmp_path):
    submission = tmp_path / "vae.py"
    submission.write_text(mutant.source)
    function = mutant.function.split(".")[0]
    assert bundle_verdicts(student_python, "hw2_vae", submission, [function]) == ta_verdicts(
        "hw2_vae", submission, [function])


def test_the_bundle_command_exit_codes(student_python, tmp_path):
    command = student_python.parent / command_name("hw2_vae")
    good = tmp_path / "vae.py"
    good.write_bytes((ROOT / "examples" / "hw2_vae" / "correct.py").read_bytes())
    ok = subprocess.run([str(command), str(good), "--only", "log_mean_exp"], capture_output=True, text=True,
                        cwd=tmp_path, timeout=600)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert re.search(r"Score: 5 / 5 public points; hidden checks grade the remaining \d+ points after submission",
                     ok.stdout), ok.stdout[-1000:]
    missing = subprocess.run([str(command), str(tmp_path / "nope.py")], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such file" in missing.stderr


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_every_bundle_gives_the_verdicts_of_grade(request, assignment_id, tmp_path):
    """--student-bundle-all: each assignment's samples and the mutants `validate --quick` grades
    (16 minutes for the six with -n 2 on 2 cores; `-k hw3` picks one)."""
    if not request.config.getoption("--student-bundle-all"):
        pytest.skip("every assignment's bundle: pytest --student-bundle-all")
    python = install_bundle(assignment_id, tmp_path / assignment_id)
    for sample in samples(assignment_id):
        submission = tmp_path / assignment_id / sample.name
        submission.write_bytes(sample.read_bytes())
        assert bundle_verdicts(python, assignment_id, submission) == ta_verdicts(assignment_id, submission), sample
    module = load_assignment(assignment_id).config.module
    for mutant in quick_mutants(assignment_id, QUICK_MUTANTS):
        submission = tmp_path / assignment_id / f"{module}.py"
        submission.write_text(mutant.source)
        function = [mutant.function.split(".")[0]]
        assert bundle_verdicts(python, assignment_id, submission, function) == ta_verdicts(
            assignment_id, submission, function), mutant.description


# ---------------------------------------------------------------- check() in a notebook

RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=900, kernel_name="python3").execute()
nbformat.write(nb, sys.argv[1])
"""
TRAINING_CELL = "for step in range(3):\n    print('training step', step)\n"


def handout_notebook(solution: Path | None, check_call: str, path: Path) -> Path:
    """hw2's handout notebook with each function cell replaced by ``solution``'s definition and the
    solution's imports added to the imports cell (None: blank), then a training cell and the cell
    ``from dgm_grade.hw2_vae import check; <check_call>``."""
    import nbformat

    nb = nbformat.read(ROOT / "assignments" / "hw2_vae" / "handout" / "vae.ipynb", as_version=4)
    if solution is not None:
        source = solution.read_text()
        module = ast.parse(source)
        defs = {n.name: ast.get_source_segment(source, n) for n in module.body if isinstance(n, ast.FunctionDef)}
        imports = "\n".join(ast.get_source_segment(source, n) for n in module.body
                            if isinstance(n, (ast.Import, ast.ImportFrom)))
        for cell in nb.cells:
            body = ast.parse(cell.source).body if cell.cell_type == "code" else []
            if len(body) == 1 and isinstance(body[0], ast.FunctionDef) and body[0].name in defs:
                cell.source = defs[body[0].name]
            elif body and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body):
                cell.source += "\n" + imports
    nb.cells.append(nbformat.v4.new_code_cell(TRAINING_CELL))
    nb.cells.append(nbformat.v4.new_code_cell(f"from dgm_grade.hw2_vae import check\n{check_call}"))
    nbformat.write(nb, path)
    return path


def check_output(python: Path, notebook: Path) -> tuple[str, str]:
    """Execute the notebook in a kernel of ``python``'s venv; the (HTML, plain text) its last cell displayed."""
    run = subprocess.run([str(python), "-c", RUN_NOTEBOOK, str(notebook)], capture_output=True, text=True,
                         timeout=1200, cwd=notebook.parent)
    assert run.returncode == 0, run.stderr[-3000:]
    outputs = json.loads(notebook.read_text())["cells"][-1]["outputs"]
    [shown] = [o for o in outputs if o["output_type"] == "display_data"]
    return "".join(shown["data"]["text/html"]), "".join(shown["data"]["text/plain"])


def table_rows(page: str) -> int:
    return len(re.findall(r"<tr><td><span class=\"dgm-(pass|fail)\">", page))


def test_check_in_a_notebook_shows_full_public_marks_for_the_solution(student_python, tmp_path):
    saved = handout_notebook(None, "", tmp_path / "saved.ipynb")  # what the student last saved: the blank handout
    notebook = handout_notebook(ROOT / "examples" / "hw2_vae" / "correct.py", f"check(notebook={str(saved)!r})",
                                tmp_path / "vae.ipynb")
    page, text = check_output(student_python, notebook)
    public = [c for c in load_assignment("hw2_vae", hidden=False).checks]
    assert table_rows(page) == len(public) and page.count("dgm-pass\">&#10003;") == len(public)
    assert re.search(r"Score: 35 / 35 public points; hidden checks grade the remaining \d+ points", page)
    assert "process sandbox" in page  # the isolation line
    assert "the kernel&#x27;s current definitions" in page
    assert re.search(r"code cell \d+, line 1: `for step in range\(3\):` not run", page), page[:3000]  # what it left out
    assert "saved notebook saved.ipynb differs" in page and "kl_normal" in page
    assert "Score: 35 / 35 public points" in text  # the plain-text version, for a console


def test_check_in_a_notebook_expands_failures_of_buggy_code(student_python, tmp_path):
    notebook = handout_notebook(ROOT / "examples" / "hw2_vae" / "partly_wrong.py", 'check("kl_normal")',
                                tmp_path / "vae.ipynb")
    page, _ = check_output(student_python, notebook)
    kl_checks = [c for c in load_assignment("hw2_vae", hidden=False).checks if c.function == "kl_normal"]
    assert table_rows(page) == len(kl_checks) and "dgm-fail\">&#10007;" in page
    assert "<details open>" in page and "Counterexample" in page and "expected" in page and "got" in page
    assert "The handout says" in page  # the property the failure breaks
    assert "differs" not in page  # no saved notebook named, none compared


def test_check_in_a_notebook_lists_the_blank_handout_as_todo(student_python, tmp_path):
    notebook = handout_notebook(None, "check()", tmp_path / "vae.ipynb")
    page, _ = check_output(student_python, notebook)
    assert "Score: 0 / 35 public points" in page
    functions = load_assignment("hw2_vae", hidden=False).config.functions
    assert table_rows(page) == len(functions) and page.count("not implemented") >= len(functions)
