"""Find and load assignments: config + public checks (+ hidden checks when present).

    assignments/<id>/config.toml        validated by grader/config.py
    assignments/<id>/checks_public.py   `checks = Checks()`; visible checks
    assignments/<id>/checks_hidden.py   `checks = Checks(hidden=True)`; absent in the student bundle
    assignments/<id>/handout/           generated template (.py, .ipynb)
    assignments/<id>/bundle.toml        student bundle only: the points of the hidden checks it leaves out
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import assignments as _assignments_pkg

from .config import AssignmentConfig, ConfigError, load_config

if TYPE_CHECKING:  # grader.checks imports torch: only load_assignment needs it
    from .checks import Check

ASSIGNMENTS_DIR = Path(_assignments_pkg.__file__).parent
BUNDLE_FILE = "bundle.toml"  # written by grader/deploy/student.py in place of checks_hidden.py

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class UnknownAssignment(Exception):
    pass


@dataclass(frozen=True)
class Assignment:
    config: AssignmentConfig
    path: Path
    checks: tuple[Check, ...]  # public first, then hidden, each in file order
    checks_hash: str  # sha256 of config + check sources: goes into results.json

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def public_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.hidden)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)


def assignment_ids() -> list[str]:
    return sorted(p.parent.name for p in ASSIGNMENTS_DIR.glob("*/config.toml"))


def load_assignment(assignment_id: str, *, hidden: bool = True) -> Assignment:
    """Load an assignment; ``hidden=False`` never imports checks_hidden.py."""
    from .checks import Checks  # (and torch, which the checks use)

    path = ASSIGNMENTS_DIR / assignment_id
    if not (path / "config.toml").is_file():
        known = ", ".join(assignment_ids()) or "none"
        raise UnknownAssignment(f"unknown assignment '{assignment_id}' (known: {known})")
    config = load_config(path / "config.toml")
    if config.id != assignment_id:
        raise ConfigError(f"{path / 'config.toml'}: field 'id': is '{config.id}' but the folder is '{assignment_id}'")
    files = ["checks_public"] + (["checks_hidden"] if hidden and (path / "checks_hidden.py").is_file() else [])
    checks: list[Check] = []
    digest = hashlib.sha256((path / "config.toml").read_bytes())
    for name in files:
        module = importlib.import_module(f"{_assignments_pkg.__name__}.{assignment_id}.{name}")
        registry = getattr(module, "checks", None)
        if not isinstance(registry, Checks):
            raise ConfigError(f"{path / (name + '.py')}: must define `checks = Checks(...)`")
        if registry.hidden != (name == "checks_hidden"):
            raise ConfigError(f"{path / (name + '.py')}: `checks` must be Checks(hidden={name == 'checks_hidden'})")
        checks.extend(registry.items)
        digest.update((path / f"{name}.py").read_bytes())
    _validate(config, checks, path, complete=hidden)
    return Assignment(config, path, tuple(checks), digest.hexdigest()[:16])


def hidden_points(assignment_id: str) -> float:
    """The points of the hidden checks, which `check` does not run.

    Counted from checks_hidden.py where it is (a TA's installation); in the student
    bundle, which has no hidden checks, read from the total its builder recorded in
    bundle.toml; 0 when neither is there.
    """
    path = ASSIGNMENTS_DIR / assignment_id
    if (path / "checks_hidden.py").is_file():
        full = load_assignment(assignment_id, hidden=True)
        return sum(c.points for c in full.checks if c.hidden)
    if (path / BUNDLE_FILE).is_file():
        try:
            return float(tomllib.loads((path / BUNDLE_FILE).read_text())["hidden_points"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path / BUNDLE_FILE}: no readable hidden_points ({exc})") from None
    return 0.0


def _validate(config: AssignmentConfig, checks: list[Check], path: Path, *, complete: bool) -> None:
    """Names in the config, positive points, unique names and ids, and ``requires`` naming real checks
    (``complete``: the hidden checks are loaded too, so every required id must be there)."""
    names = set(config.functions)
    seen: set[str] = set()
    ids = [c.id for c in checks]
    for c in checks:
        if ids.count(c.id) > 1:
            raise ConfigError(f"{path}: two checks have the id '{c.id}' (the check function's name)")
        unknown = [r for r in c.requires if r not in ids]
        if (unknown and complete) or c.id in c.requires:
            raise ConfigError(f"{path}: check '{c.id}' requires {', '.join(unknown) or c.id}, which is not another "
                              "check of this assignment")
        for fn in c.needs:
            if fn.split(".")[0] not in names:
                raise ConfigError(f"{path}: check '{c.id}' uses '{fn}', which is not in config field 'functions'")
        if c.points <= 0:
            raise ConfigError(f"{path}: check '{c.id}' has points {c.points}; points must be positive")
        if c.name in seen:
            raise ConfigError(f"{path}: two checks are named '{c.name}'")
        seen.add(c.name)
