"""What holds for every assignment (realistic bugs of each family live in tests/test_<id>.py;
reference full marks under 2 seeds, template 0 and a mutant sample in tests/test_mutate.py;
public checks importable without reference/ in tests/test_config.py)."""
from __future__ import annotations

import pytest

from conftest import ROOT, grade_source, reference_source
from grader.assignment import assignment_ids, load_assignment
from grader.handout import template_source, write_handout


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_committed_handout_is_generated_from_the_reference(assignment_id, tmp_path):
    module = load_assignment(assignment_id, hidden=False).config.module
    write_handout(assignment_id, tmp_path)
    for name in (f"{module}.py", f"{module}.ipynb"):
        committed = (ROOT / "assignments" / assignment_id / "handout" / name).read_text()
        assert committed == (tmp_path / name).read_text(), f"stale handout: run `dgm-grade handout {assignment_id}`"


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_blank_template_fails_every_check_saying_what_is_missing(assignment_id):
    """A student who has written nothing yet gets 0 and, on every check, the NotImplementedError
    of the function to write (not a crash of the grader, not a check left out)."""
    module = load_assignment(assignment_id).config.module
    grade = grade_source(assignment_id, template_source(reference_source(module)))
    assert grade.score == 0 and not grade.problem
    assert len(grade.results) == len(grade.assignment.checks)
    silent = [r.check.name for r in grade.results if "NotImplementedError" not in r.output]
    assert silent == [], silent


# Public checks that draw no examples and require no drawn pin, and why no table of answers passes them.
UNGATED_FIXED_INPUTS = {
    ("hw2_vae", "sample_distribution"): "its output is fresh random samples tested as a distribution",
}


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_public_checks_on_fixed_inputs_count_only_with_a_drawn_pin(assignment_id):
    """A public check on fixed inputs shows its expected numbers to every student; a table of those
    numbers must score nothing there under `grade`: such a check requires (directly or through
    other checks) a check whose inputs hypothesis draws (issue 11, item 12)."""
    from grader.judge import required_checks

    assignment = load_assignment(assignment_id)
    drawn = {c.id for c in assignment.checks if getattr(c.run, "is_hypothesis_test", False)}
    pins = required_checks(assignment.checks)
    ungated = [c.id for c in assignment.public_checks if c.id not in drawn and not pins[c.id] & drawn
               and (assignment_id, c.id) not in UNGATED_FIXED_INPUTS]
    assert ungated == [], f"public checks on fixed inputs without a drawn pin: {ungated}"
