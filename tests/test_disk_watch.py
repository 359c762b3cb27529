"""grader/sandbox/process.py's DiskWatch: what bounds a worker's disk use without namespaces (the attack
itself is tests/test_hostile.py's test_filling_the_disk_is_bounded_and_leaves_nothing)."""
from __future__ import annotations

import os

import pytest

from grader.sandbox import process


def fell(watch: process.DiskWatch, size: int = 0, inodes: int = 0) -> None:
    """Make ``watch`` see its file systems' free space and inodes as fallen by this much since its baseline."""
    watch.baseline = {dev: (free + size, files + inodes) for dev, (free, files) in watch.baseline.items()}


def test_the_disk_watch_counts_only_what_the_worker_uid_owns(tmp_path):
    """A fall in free space that the worker's files do not account for becomes the new baseline; its own
    files past the budget are reported, in directories it could write (its own and world-writable ones)."""
    me = os.getuid()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (tmp_path / "private").mkdir(mode=0o755)
    (shared / "someone else's").write_bytes(os.urandom(8 << 20))
    watch = process.DiskWatch(me + 1, (str(tmp_path),), budget=4 << 20)
    fell(watch, size=16 << 20)  # the free space fell, not by the worker
    assert watch.over() == "" and watch.counted == (0, 0)
    mine = process.DiskWatch(me, (str(shared),), budget=4 << 20)
    fell(mine, size=16 << 20)
    assert "wrote 8 MB to disk" in mine.over()
    size, files = process.owned(me, (str(tmp_path),), 100)
    assert size >= 8 << 20 and files == 3  # shared, private and the file in shared


def test_the_disk_watch_counts_files_too(tmp_path, monkeypatch):
    """Many empty files exhaust the inodes without using the bytes: a fall in free inodes makes it count,
    and more files of the uid than MAX_FILES is over the budget."""
    monkeypatch.setattr(process.DiskWatch, "MAX_FILES", 20)
    for i in range(30):
        (tmp_path / f"empty-{i}").touch()
    watch = process.DiskWatch(os.getuid(), (str(tmp_path),), budget=1 << 30)
    assert watch.over() == ""  # nothing fell since it started
    fell(watch, inodes=25)
    assert "more than 20 files" in watch.over()
    assert process.owned(os.getuid(), (str(tmp_path),), 10)[1] == 30  # the first directory past max_files is the last


def test_what_the_uid_left_is_removed_also_inside_world_writable_dirs(tmp_path):
    """kill_uid's sweep (remove_files_of): the uid's files at the top and inside a world-writable dir it
    could write into go; everything of other users stays."""
    if os.geteuid() != 0:
        pytest.skip("giving files to another uid needs root")
    uid = 64999
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    keep = [tmp_path / "ours", shared / "ours"]
    gone = [tmp_path / "theirs", shared / "theirs", shared / "their dir"]
    for path in keep + gone[:2]:
        path.write_bytes(b"x")
    gone[2].mkdir()
    (gone[2] / "inside").write_bytes(b"x")
    for path in (*gone, gone[2] / "inside"):
        os.chown(path, uid, uid)
    process.remove_files_of(uid, (str(tmp_path),))
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)
