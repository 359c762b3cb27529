"""Submission loading: notebooks, folders, zips, and the clear errors for bad ones."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from grader.api import UsageError, check_out_path
from grader.submission import SubmissionError, load_submission, submission_from_bytes


def notebook(*sources: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title")] + [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.writes(nb).encode()


@pytest.mark.parametrize("data,message", [
    (b"{not json", "is not a readable notebook"),
    (b"\xff\xfe\x00garbage", "not a UTF-8 text file"),
    (b'{"cells": 3}', "is not a readable notebook"),
])
def test_broken_notebook_is_one_readable_error_naming_the_file(data, message):
    with pytest.raises(SubmissionError, match=rf"^vae_v2.ipynb .*{message}"):
        submission_from_bytes(data, "vae", name="vae_v2.ipynb")


def test_folder_picks_the_module_and_keeps_helpers(tmp_path):
    (tmp_path / "hw" / "utils").mkdir(parents=True)
    (tmp_path / "hw" / "vae.py").write_text("from utils.h import X\n")
    (tmp_path / "hw" / "utils" / "h.py").write_text("X = 1\n")
    (tmp_path / "hw" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "hw" / ".ipynb_checkpoints" / "vae.py").write_text("broken(\n")
    sub = load_submission(tmp_path, "vae")
    assert sorted(sub.files) == ["utils/h.py", "vae.py"]


def test_missing_module_names_what_was_found(tmp_path):
    (tmp_path / "solution.py").write_text("x = 1\n")
    (tmp_path / "utils.py").write_text("y = 1\n")
    with pytest.raises(SubmissionError, match=r"no vae.py or vae.ipynb .*solution.py"):
        load_submission(tmp_path, "vae")


def zip_with(tmp_path, name: str, entries: dict[str, bytes], *, link: str | None = None):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        for entry, data in entries.items():
            z.writestr(entry, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize("entries,link,message", [
    ({"/abs/vae.py": b"x"}, None, "absolute path"),
    ({"../vae.py": b"x"}, None, r"outside the archive"),
    ({"a/../../vae.py": b"x"}, None, r"outside the archive"),
    ({"vae.py": b"x"}, "evil.py", "symbolic link"),
    ({"vae.py": b"x", "big.bin": b"0" * (6 << 20)}, None, "larger than"),
])
def test_unsafe_zips_are_rejected_with_a_clear_message(tmp_path, entries, link, message):
    with pytest.raises(SubmissionError, match=message):
        load_submission(zip_with(tmp_path, "s.zip", entries, link=link), "vae")


def test_zip_bomb_of_many_files_is_rejected(tmp_path):
    entries = {f"f{i}.py": b"" for i in range(600)} | {"vae.py": b""}
    with pytest.raises(SubmissionError, match="more than 500 files"):
        load_submission(zip_with(tmp_path, "s.zip", entries), "vae")


def test_not_a_zip_and_wrong_suffix(tmp_path):
    bad = tmp_path / "s.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SubmissionError, match="not a readable zip"):
        load_submission(bad, "vae")
    other = tmp_path / "vae.txt"
    other.write_text("x")
    with pytest.raises(SubmissionError, match="expected vae.py"):
        load_submission(other, "vae")


def test_symlink_in_folder_is_rejected(tmp_path):
    (tmp_path / "vae.py").write_text("x = 1\n")
    os.symlink("/etc/passwd", tmp_path / "passwd.py")
    with pytest.raises(SubmissionError, match="symbolic links"):
        load_submission(tmp_path, "vae")


# ------------------------------------------------------------------ which file is graded, and saying so


@pytest.mark.parametrize("names,graded,others", [
    (["b/vae.py", "a/vae.py"], "a/vae.py", ["b/vae.py"]),  # same depth: alphabetical
    (["vae.ipynb", "vae.py"], "vae.py", ["vae.ipynb"]),  # .py before .ipynb at the same depth
    (["old/vae.py", "vae.ipynb"], "vae.ipynb", ["old/vae.py"]),  # shallower first
    (["vae (2).ipynb", "utils.py"], "vae (2).ipynb", []),  # Gradescope renames
    (["hw/my_vae.py", "hw/helpers.py"], "hw/my_vae.py", []),
    (["VAE_final.ipynb", "VAE_final.py"], "VAE_final.py", ["VAE_final.ipynb"]),  # a notebook and its export
    (["solution.ipynb"], "solution.ipynb", []),  # the only code file
])
def test_the_graded_file_follows_the_rule_and_a_note_says_which(tmp_path, names, graded, others):
    for name in names:
        path = tmp_path / "sub" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(notebook("def kl_normal(x):\n    return 0") if name.endswith(".ipynb")
                         else b"def kl_normal(x):\n    return 1\n")
    sub = load_submission(tmp_path / "sub", "vae", functions=["kl_normal"])
    assert sub.graded_file == graded
    assert sub.notes[0].startswith(f"graded {graded}")
    for other in others:
        assert other in sub.notes[0].split("not graded: ")[1]
    assert "vae.py" in sub.files and not any(f.endswith(".ipynb") for f in sub.files)


def test_several_files_that_could_be_it_are_an_error_listing_them(tmp_path):
    (tmp_path / "vae (1).ipynb").write_bytes(notebook("x = 1"))
    (tmp_path / "vae (2).ipynb").write_bytes(notebook("x = 2"))
    with pytest.raises(SubmissionError, match=r"several could be it: vae \(1\).ipynb, vae \(2\).ipynb; rename"):
        load_submission(tmp_path, "vae")


def test_a_zip_with_a_gradescope_name_is_graded_and_errors_name_the_students_file(tmp_path):
    path = zip_with(tmp_path, "s.zip", {"hw2/my_vae.py": b"def kl_normal(a):\n    return a\n"})
    sub = load_submission(path, "vae")
    assert sub.graded_file == "hw2/my_vae.py" and "vae.py" in sub.files
    assert sub.explain('vae.py could not be imported: File "vae.py", line 2') == \
        'hw2/my_vae.py could not be imported: File "hw2/my_vae.py", line 2'


@pytest.mark.parametrize("text,message", [
    (b"", "vae.py is an empty file"),
    (b"\n  \n# TODO: write the VAE\n", r"vae.py is an empty file \(only comments\)"),
])
def test_an_empty_file_says_so(tmp_path, text, message):
    (tmp_path / "vae.py").write_bytes(text)
    with pytest.raises(SubmissionError, match=message):
        load_submission(tmp_path / "vae.py", "vae")


def test_size_caps_apply_to_code_not_to_notebook_outputs(tmp_path):
    (tmp_path / "vae.py").write_bytes(b"x = 1\n" + b"#" * (6 << 20))
    with pytest.raises(SubmissionError, match="vae.py is larger than 5 MB"):
        load_submission(tmp_path / "vae.py", "vae")
    big = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("def kl_normal(x):\n    return x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "A" * (8 << 20)})]
    big.cells = [cell]
    path = tmp_path / "zipped.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("vae.ipynb", nbformat.writes(big))
    assert "def kl_normal" in load_submission(path, "vae").files["vae.py"].decode()


def test_a_module_defining_none_of_the_functions_is_one_problem(grade_with):
    vae = (ROOT / "reference" / "vae.py").read_text()
    g = grade_with("hw5_diffusion", vae, functions=("q_sample",), hidden=False)
    assert g.score == 0
    assert g.problem.startswith("diffusion.py defines none of the functions this assignment grades (linear_beta_schedule")
    assert "it defines: kl_normal, sample_gaussian, log_bernoulli_with_logits" in g.problem


@pytest.mark.parametrize("make,message", [
    (lambda d: d, "is a folder; give the file to write"),
    (lambda d: [(d / "file.txt").write_text("x"), d / "file.txt" / "results.json"][1], "file.txt is a file, not a folder"),
    (lambda d: Path("/proc/dgm/results.json"), "cannot write there"),
])
def test_an_unusable_out_is_a_usage_error(tmp_path, make, message):
    with pytest.raises(UsageError, match=message):
        check_out_path(make(tmp_path))
    check_out_path(tmp_path / "new" / "results.json")  # a missing folder is made
    assert (tmp_path / "new").is_dir() and not list((tmp_path / "new").iterdir())


def test_grade_refuses_an_unusable_out_before_grading(tmp_path):
    result = subprocess.run([sys.executable, "-m", "grader", "grade", "reference/vae.py", "-a", "hw2_vae",
                             "--sandbox", "process", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is a folder" in result.stderr and "Traceback" not in result.stderr
    assert "PASS" not in result.stdout  # refused before grading


def test_the_assignment_is_found_from_a_gradescope_style_name(tmp_path):
    from grader.api import find_assignment

    path = tmp_path / "VAE_final (1).ipynb"
    path.write_bytes(notebook("x = 1"))
    assert find_assignment(path, None) == "hw2_vae"
