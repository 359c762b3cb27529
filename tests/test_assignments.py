"""What holds for every assignment (checks of each family live in tests/test_<id>.py;
reference full marks under 2 seeds, template 0 and a mutant sample in tests/test_mutate.py;
public checks importable without reference/ in tests/test_config.py)."""
from __future__ import annotations

import pytest

from conftest import ROOT
from grader.assignment import assignment_ids, load_assignment
from grader.handout import write_handout


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_committed_handout_is_generated_from_the_reference(assignment_id, tmp_path):
    module = load_assignment(assignment_id, hidden=False).config.module
    write_handout(assignment_id, tmp_path)
    for name in (f"{module}.py", f"{module}.ipynb"):
        committed = (ROOT / "assignments" / assignment_id / "handout" / name).read_text()
        assert committed == (tmp_path / name).read_text(), f"stale handout: run `dgm-grade handout {assignment_id}`"
