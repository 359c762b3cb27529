"""An assignment's config (assignments/<id>/config.toml), validated with pydantic.

A bad config gives one ``ConfigError`` naming the file and the field.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .sandbox.base import Limits


class ConfigError(Exception):
    """An assignment config that cannot be used; the message names the field."""


class LimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(20.0, gt=0, description="wall-clock seconds per call of a student function")
    import_timeout_s: float = Field(60.0, gt=0, description="seconds to import the student module")
    memory_mb: int = Field(2048, ge=256, description="address space (process) / memory (docker) per worker")
    cpu_seconds: int = Field(900, gt=0, description="CPU seconds over a worker's life")
    file_size_mb: int = Field(64, gt=0)
    open_files: int = Field(256, ge=32)
    processes: int = Field(256, ge=8, description="processes and threads of the worker user")
    tmpfs_mb: int = Field(64, gt=0)
    max_frame_mb: int = Field(256, gt=0, description="largest reply the judge accepts")
    max_restarts: int = Field(20, ge=0, description="worker restarts per submission (after a crash, a timeout or a "
                              "bad reply); then its remaining checks fail at once")
    import_budget_s: float = Field(180.0, gt=0, description="seconds all imports of the module may take together "
                                   "(the first and every restart's); then its remaining checks fail at once")

    def sandbox_limits(self) -> Limits:
        return Limits(
            memory_mb=self.memory_mb, cpu_seconds=self.cpu_seconds, file_size_mb=self.file_size_mb,
            open_files=self.open_files, processes=self.processes, tmpfs_mb=self.tmpfs_mb,
            max_frame_mb=self.max_frame_mb,
        )


class GradescopeConfig(BaseModel):
    """How results.json shows the checks on Gradescope, and how often a student may submit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden_visibility: Literal["visible", "after_published", "after_due_date", "hidden"] = Field(
        "after_published", description="visibility of hidden checks in results.json (public checks are 'visible'); "
        "Gradescope hides the total while any test is 'hidden'")
    daily_submission_limit: Optional[int] = Field(
        None, ge=1, description="graded submissions per student in 24 hours (from Gradescope's metadata); "
        "past it a submission keeps the previous score and is not graded")


class AssignmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^hw\d+_[a-z0-9_]+$")
    title: str = Field(min_length=1)
    module: str = Field(pattern=r"^[a-z_][a-z0-9_]*$", description="the student's module name, e.g. vae")
    functions: list[str] = Field(min_length=1, description="every name the student must define, in handout order")
    seed: int = Field(0, ge=0, description="default grading seed")
    examples: int = Field(25, ge=1, le=1000, description="hypothesis examples per check")
    limits: LimitsConfig = LimitsConfig()
    gradescope: GradescopeConfig = GradescopeConfig()


def load_config(path: Path) -> AssignmentConfig:
    """Read and validate one config.toml."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return AssignmentConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}: field '{field}': {first['msg']}{more}") from None
