"""Assignment configs: every assignment loads, and a bad config is one message naming the field."""
from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignment import assignment_ids, load_assignment
from grader.config import ConfigError, load_config

GOOD = """
id = "hw2_vae"
title = "t"
module = "vae"
functions = ["kl_normal"]
"""


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_every_assignment_loads_with_checks_for_every_function(assignment_id):
    a = load_assignment(assignment_id)
    covered = {c.function for c in a.checks}
    assert set(a.config.functions) <= covered, f"functions without a check: {set(a.config.functions) - covered}"
    assert a.public_checks and any(c.hidden for c in a.checks)


def test_good_config_has_defaults(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.limits.timeout_s > 0 and config.examples >= 1


@pytest.mark.parametrize("extra,field", [
    ("[limits]\nmemory_mb = -5\n", "limits.memory_mb"),
    ("[limits]\ntimeout = 3\n", "limits.timeout"),
    ("examples = 'many'\n", "examples"),
    ("seed = -1\n", "seed"),
])
def test_bad_field_is_named(tmp_path, extra, field):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD + extra))
    message = str(info.value)
    assert f"field '{field}'" in message and "\n" not in message


def test_bad_toml_and_bad_id(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "id = "))
    with pytest.raises(ConfigError, match="field 'id'"):
        load_config(write(tmp_path, GOOD.replace("hw2_vae", "VAE!")))


def test_public_checks_do_not_need_the_reference(monkeypatch):
    """The student bundle ships public checks without reference/: importing them must not touch it."""
    import importlib
    import sys

    for assignment_id in assignment_ids():
        for name in [m for m in sys.modules if m == "reference" or m.startswith(("reference.", "assignments."))]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, "reference", None)  # any `import reference...` now raises ImportError
        importlib.import_module(f"assignments.{assignment_id}.checks_public")
        load_assignment(assignment_id, hidden=False)


def test_requires_must_name_another_check_of_the_assignment():
    from grader.assignment import _validate
    from grader.checks import Checks

    config = load_assignment("hw2_vae").config
    checks = Checks()

    @checks.add("kl_normal", "matches the definition")
    def kl_value(student):
        pass

    @checks.add("kl_normal", "zero for equal arguments", requires=("kl_value",))
    def kl_zero(student):
        pass

    config_path = Path("hw2_vae")
    _validate(config, checks.items, config_path, complete=True)

    @checks.add("kl_normal", "non-negative", requires=("kl_valeu",))
    def kl_positive(student):
        pass

    _validate(config, checks.items, config_path, complete=False)  # could be a hidden check: not loaded
    with pytest.raises(ConfigError, match="requires kl_valeu, which is not another check"):
        _validate(config, checks.items, config_path, complete=True)
