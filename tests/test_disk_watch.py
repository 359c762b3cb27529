"""grader/sandbox/process.py's DiskWatch: what bounds a worker's disk use without namespaces (the attack
itself is tests/test_hostile.py's test_filling_the_disk_is_bounded_and_leaves_nothing)."""
from __future__ import annotations

import os

from grader.sandbox import process


def test_the_disk_watch_counts_only_what_the_worker_uid_owns(tmp_path):
    """DiskWatch (the fallback without namespaces): a fall in free space that the worker's files do not
    account for becomes the new baseline; its own files past the budget are reported, in directories
    it could write (its own and world-writable ones) only."""
    me = os.getuid()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (tmp_path / "private").mkdir(mode=0o755)
    watch = process.DiskWatch(me + 1, (str(tmp_path),), budget=4 << 20)
    (shared / "someone else's").write_bytes(os.urandom(8 << 20))  # the free space falls, not by the worker
    watch.baseline = {dev: free + (16 << 20) for dev, free in watch.baseline.items()}  # as if it fell by more
    assert watch.over() == "" and watch.counted == 0
    mine = process.DiskWatch(me, (str(shared),), budget=4 << 20)
    mine.baseline = {dev: free + (16 << 20) for dev, free in mine.baseline.items()}
    assert "wrote 8 MB to disk" in mine.over()
    assert process.owned_bytes(me, (str(tmp_path),), 100) >= 8 << 20
    assert process.owned_bytes(me, (str(tmp_path),), 1) is None  # too many entries to count
