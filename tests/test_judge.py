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
