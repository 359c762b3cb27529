"""The judge's seeding: the same check and seed draw the same examples wherever the judge runs."""
from __future__ import annotations

import importlib
import sys

from hypothesis import given
from hypothesis import strategies as st

from grader.judge import check_seed, seeded


def draws(seed: int) -> list[float]:
    """The floats a check body drawing 5 floats per example sees under the judge's settings."""
    seen: list[float] = []

    @given(st.lists(st.floats(-10, 10), min_size=5, max_size=5))
    def body(xs):
        seen.extend(xs)

    seeded(body, seed, examples=200, shrink=False)()
    return seen


def test_same_seed_same_draws_whatever_else_the_process_imported(tmp_path, monkeypatch):
    """Hypothesis can mix literal constants of every loaded source file into its data; the judge
    turns that off, so `check`, `grade`, validate and a batch run draw the same examples."""
    seed = check_seed(2026, "hw6_score", "dsm_gradients")
    before = draws(seed)
    assert before == draws(seed)
    module = tmp_path / "lots_of_constants.py"
    module.write_text("VALUES = [" + ", ".join(f"{-9.5 + i * 0.0731:.4f}" for i in range(250)) + "]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("lots_of_constants")
        assert draws(seed) == before
    finally:
        sys.modules.pop("lots_of_constants", None)


# ---------------------------------------------------------------------- value pins gate consistency checks

from grader.checks import Check  # noqa: E402
from grader.judge import CheckResult, apply_requirements, required_checks  # noqa: E402


def _check(check_id: str, requires: tuple[str, ...] = ()) -> Check:
    def body(student):
        pass

    body.__name__ = check_id
    return Check("f", check_id.replace("_", " "), 2, body, requires=requires)


def _results(passed: dict[str, bool], requires: dict[str, tuple[str, ...]]) -> list[CheckResult]:
    return [CheckResult(_check(i, requires.get(i, ())), ok, 2.0 if ok else 0.0, "" if ok else "wrong", 0.0)
            for i, ok in passed.items()]


def test_a_consistency_check_scores_only_when_its_value_pin_passes():
    requires = {"inverse_undoes_forward": ("forward_value",)}
    identity = _results({"forward_value": False, "inverse_undoes_forward": True}, requires)
    apply_requirements(identity, required_checks([r.check for r in identity]))
    gated = identity[1]
    assert (gated.passed, gated.score, gated.gated_by) == (False, 0.0, ("f: forward value",))
    assert gated.output.startswith("Counts only when 'f: forward value' also passes")
    correct = _results({"forward_value": True, "inverse_undoes_forward": True}, requires)
    apply_requirements(correct, required_checks([r.check for r in correct]))
    assert [r.score for r in correct] == [2.0, 2.0]
    stopped = _results({"forward_value": False, "inverse_undoes_forward": True}, requires)
    stopped[0].kind = "not run"  # grading stopped before the pin: it decides nothing
    apply_requirements(stopped, required_checks([r.check for r in stopped]))
    assert [r.score for r in stopped] == [0.0, 2.0] and not stopped[1].gated_by


def test_pins_are_followed_through_other_checks_and_absent_pins_gate_nothing():
    requires = {"a": ("b",), "b": ("c",), "c": ("a",), "d": ("hidden_pin",)}
    results = _results({"a": True, "b": True, "c": False, "d": True}, requires)
    pins = required_checks([r.check for r in results])
    assert pins["a"] == {"b", "c"} and pins["d"] == frozenset()
    apply_requirements(results, pins, pending={"c"})  # c has not run yet: nothing is decided
    assert [r.passed for r in results] == [True, True, False, True]
    apply_requirements(results, pins)
    assert [r.score for r in results] == [0.0, 0.0, 0.0, 2.0]
    assert results[0].gated_by == ("f: c",)  # b's own property held; c's did not
