"""The mutator (grader/mutate.py) and the validation run (grader/validate.py)."""
from __future__ import annotations

import ast
from collections import Counter

import pytest

from grader.assignment import assignment_ids, load_assignment
from grader.mutate import OPERATORS, mutants
from grader.validate import (KILL_TARGET, QUICK_MUTANTS, TABLE_END, TABLE_START, checks_for, load_equivalents,
                             quick_sample, validate, write_docs_table)

SAMPLE = '''"""A module docstring with 0.5 and 1 in it."""
import math

import torch
import torch.nn.functional as F

SCALE = 2.0  # module constants are not mutated


def _helper(x):
    return x + 1  # private: not mutated


def loss(x, logits, eps=None, dim=-1):
    """Docstring: 0.5 * x is not code."""
    if eps is None:
        eps = torch.randn(x.shape)
    log_p = x * F.logsigmoid(logits) + (1.0 - x) * F.logsigmoid(-logits)
    scaled = 0.5 * (log_p ** 2).sum(-1) / math.pi
    picked = x[dim] + torch.where(x > 0, x, -x)
    total = torch.logsumexp(log_p, dim=dim).detach()
    return scaled.mean() + picked.sum() - total.sum() + eps.sum()


class Flow:
    """A class: its methods are mutated, as Flow.method."""

    def forward(self, x, y):
        return torch.cat([x, y], -1) * 3
'''


def test_every_operator_fires_on_the_sample():
    found = Counter(m.operator for m in mutants(SAMPLE))
    assert set(found) == set(OPERATORS), f"operators without a mutant: {set(OPERATORS) - set(found)}"


def test_mutants_compile_differ_and_stay_inside_public_code():
    original = ast.dump(ast.parse(SAMPLE))
    ms = mutants(SAMPLE)
    assert len({m.id for m in ms}) == len(ms)
    for m in ms:
        compile(m.source, m.id, "exec")
        assert ast.dump(ast.parse(m.source)) != original
        assert m.function in ("loss", "Flow.forward")
        assert '"""A module docstring with 0.5 and 1 in it."""' in m.source
        assert "SCALE = 2.0" in m.source and "return x + 1  # private" in m.source
        assert "Docstring: 0.5 * x is not code." in m.source
    assert len({ast.dump(ast.parse(m.source)) for m in ms}) == len(ms), "two mutants are the same program"


@pytest.mark.parametrize("description, expected", [
    ("`0.5` -> `1.0`", "constant"),
    ("`x[dim]` -> `x[dim + 1]`", "off_by_one"),
    ("`(log_p ** 2).sum(-1)` -> `log_p ** 2`", "drop_reduction"),
    ("`torch.logsumexp(log_p, dim=dim).detach()` -> `torch.logsumexp(log_p, dim=dim)`", "detach"),
    ("`F.logsigmoid(logits)` -> `F.logsigmoid(-logits)`", "negate_argument"),
    ("`torch.where(x > 0, x, -x)` -> `torch.where(x > 0, -x, x)`", "where_branches"),
    ("`eps is None` -> `eps is not None`", "comparison"),
    ("`math.pi` -> `math.e`", "math_constant"),
    ("`log_p ** 2` -> `log_p ** 3`", "exponent"),
    ("`x > 0` -> `x >= 0`", "comparison"),
])
def test_named_mutants(description, expected):
    matches = [m for m in mutants(SAMPLE) if description in m.description]
    assert [m.operator for m in matches] == [expected]


def test_ids_are_stable_when_unrelated_lines_move():
    before = {m.id: m.description.split(": ", 1)[1] for m in mutants(SAMPLE)}
    inserted = 'SCALE = 2.0\n\n\ndef other(a, b):\n    """New."""\n    return a * b - 1\n# a comment\n'
    moved = SAMPLE.replace("SCALE = 2.0", inserted)
    after = {m.id: m.description.split(": ", 1)[1] for m in mutants(moved) if m.function != "other"}
    assert after == before  # same ids, same edits, new line numbers


def test_repeated_code_gets_distinct_stable_ids():
    source = "def f(x):\n    a = x + 1\n    b = x + 1\n    return a * b\n"
    ids = [m.id for m in mutants(source) if "`x + 1` -> `x - 1`" in m.description]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert ids == [m.id for m in mutants("\n\n" + source) if "`x + 1` -> `x - 1`" in m.description]


def test_quick_sample_is_fixed_and_covers_the_operators():
    ms = mutants(SAMPLE)
    first, again = quick_sample(ms, 10), quick_sample(list(reversed(ms)), 10)
    assert [m.id for m in first] == [m.id for m in again]
    assert len({m.operator for m in quick_sample(ms, len(OPERATORS))}) == len(OPERATORS)


def test_checks_of_the_mutated_function_run_first():
    assignment = load_assignment("hw2_vae")
    ordered = checks_for(assignment, "log_mean_exp")
    n = sum(c.function == "log_mean_exp" for c in assignment.checks)
    assert n > 0 and all(c.function == "log_mean_exp" for c in ordered[:n])
    assert sorted(c.id for c in ordered) == sorted(c.id for c in assignment.checks)


def test_equivalent_list_format(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[[equivalent]]\nid = "abc"\nfunction = "f"\ndescription = "d"\nreason = "r"\n')
    assert load_equivalents(good)[0].id == "abc"
    assert load_equivalents(tmp_path / "absent.toml") == []
    bad = tmp_path / "bad.toml"
    bad.write_text('[[equivalent]]\nid = "abc"\nfunction = "f"\ndescription = "d"\n')
    with pytest.raises(ValueError, match="reason"):
        load_equivalents(bad)


def test_committed_equivalent_lists_parse():
    from grader.assignment import ASSIGNMENTS_DIR

    for path in ASSIGNMENTS_DIR.glob("*/equivalent_mutants.toml"):
        load_equivalents(path)


class _Row:
    def __init__(self, aid: str, text: str) -> None:
        self.assignment_id, self._text = aid, text

    def as_markdown_row(self) -> str:
        return f"| `{self.assignment_id}` | {self._text} |"


def test_docs_table_refreshes_one_row_and_keeps_the_rest(tmp_path):
    doc = tmp_path / "assignments.md"
    doc.write_text("# Assignments\n\nIntro.\n")
    write_docs_table([_Row("hw2_vae", "old")], doc)
    write_docs_table([_Row("hw1_foundations", "one")], doc)
    write_docs_table([_Row("hw2_vae", "new")], doc)
    text = doc.read_text()
    assert text.startswith("# Assignments\n\nIntro.")
    table = text.split(TABLE_START)[1].split(TABLE_END)[0]
    assert "`hw1_foundations` | one" in table and "`hw2_vae` | new" in table and "old" not in table
    assert table.index("hw1_foundations") < table.index("hw2_vae")


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_validate_quick(assignment_id, request):
    """`dgm-grade validate ID --quick` for every assignment: full marks for the reference and for each
    alternative correct implementation, 0 for the template and for every degenerate answer (generated
    and hand-written), every sampled mutant killed or listed as equivalent.

    By default a smaller run that keeps CI within its budget (the blank template is graded by
    tests/test_assignments.py): one seed, 4 mutants, the generated
    degenerate answers (zeros, ones, echo); about 1-3 minutes per assignment on 2 cores. With
    `pytest --validate-all`, the whole quick validation (what `dgm-grade validate all --quick` runs,
    about 40 minutes on 2 cores; tests/test_hw1_foundations.py, test_hw3_flows.py and test_hw4_gan.py
    also grade their hand-written special-case answers by default).
    """
    full = request.config.getoption("--validate-all")
    report = (validate(assignment_id, quick=True, seeds=2) if full else
              validate(assignment_id, quick=True, seeds=1, sample=4, alternatives=False, hand_written=False,
                       template=False))
    assert report.reference_ok, report.flaky
    if full:  # else tests/test_assignments.py grades the blank template
        assert report.template_score == 0
    assert len(report.outcomes) == min(QUICK_MUTANTS if full else 4, report.mutants_total)
    assert report.mutants_total > 50
    assert not report.unlisted_survivors, [o.mutant.description for o in report.unlisted_survivors]
    assert report.alternatives_ok, report.alternatives
    assert report.degenerates_ok, [d for d in report.degenerates if d.points]
    assert len(report.degenerates) >= 3 and (not full or report.alternatives)
    assert report.kill_rate >= KILL_TARGET
    assert report.passed
    assert report.as_markdown_row().startswith(f"| `{assignment_id}` |")
