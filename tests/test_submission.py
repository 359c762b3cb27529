"""Submission loading: notebooks, folders, zips, and the clear errors for bad ones."""
from __future__ import annotations

import os
import stat
import zipfile

import nbformat
import pytest

from grader.submission import SubmissionError, load_submission, notebook_to_module


def notebook(*sources: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title")] + [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.writes(nb).encode()


def test_notebook_keeps_definitions_and_drops_magics_shell_and_top_level_work():
    source, notes = notebook_to_module(notebook(
        "%matplotlib inline\n!pip install torch\nimport torch\nSCALE = 2 * 3.0",
        "@torch.no_grad()\ndef f(x):\n    return x * SCALE",
        "class Model:\n    pass",
        "model = Model()\nfor epoch in range(10**9):\n    f(epoch)\nprint('done')",
        "%%time\nwhile True: pass",
        "def g(x:\n    pass",
        "torch.hub.load('x', 'y')?",
    ), "vae.ipynb")
    namespace: dict = {}
    exec(compile(source, "vae.py", "exec"), namespace)
    assert namespace["f"](2) == 12.0
    assert "Model" in namespace and "model" not in namespace
    text = "\n".join(notes)
    assert "dropped 2 IPython magic/shell line(s)" in text
    assert "dropped top-level `model = Model()`" in text and "dropped top-level `for epoch" in text
    assert "code cell 6: syntax error" in text
    assert "while True" not in source


@pytest.mark.parametrize("data,message", [
    (b"{not json", "is not a readable notebook"),
    (b"\xff\xfe\x00garbage", "not a UTF-8 text file"),
    (b'{"cells": 3}', "is not a readable notebook"),
])
def test_broken_notebook_is_one_readable_error(data, message):
    with pytest.raises(SubmissionError, match=message):
        notebook_to_module(data, "vae.ipynb")


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
