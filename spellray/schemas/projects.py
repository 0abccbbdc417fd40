"""Projects: `spell project create | list | get | edit | add-runs | remove-runs | archive |
unarchive` and `spell run -p NAME`. A project is also the MLflow experiment of its name."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field, field_validator, model_validator

from spellray.schemas.base import DbId, Schema

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Said where a run has no project: `spell ps`, `spell info`, the console.
UNCATEGORIZED = "uncategorized"
MAX_RUNS_PER_CHANGE = 1000


def validate_project_name(name: str) -> str:
    if not PROJECT_NAME.match(name):
        raise ValueError(f"bad project name {name!r}: use letters, digits, '.', '_' or '-' "
                         "(at most 100), starting with a letter or digit")
    if name.lower() == UNCATEGORIZED:
        raise ValueError(f"{name!r} is what runs without a project are called; "
                         "pick another project name")
    return name


class ProjectRequest(Schema):
    name: str
    description: str | None = None

    _name = field_validator("name")(validate_project_name)


class ProjectUpdate(Schema):
    """`spell project edit NAME [--name NEW] [-d TEXT]`: what is given changes."""

    name: str | None = None
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else validate_project_name(value)

    @model_validator(mode="after")
    def _something(self) -> ProjectUpdate:
        if self.name is None and self.description is None:
            raise ValueError("nothing to change: give --name NEW and/or -d TEXT")
        return self


class ProjectRuns(Schema):
    """The runs `add-runs` / `remove-runs` move, or `spell archive` / `unarchive` change."""

    runs: list[DbId] = Field(min_length=1, max_length=MAX_RUNS_PER_CHANGE)


class Project(Schema):
    name: str
    description: str | None = None
    owner: str
    archived_at: datetime | None = None
    created_at: datetime
    mlflow_experiment_id: str | None = None
    # Its runs by status ("complete": 12, ...), all kinds but workspaces.
    status_counts: dict[str, int] = Field(default_factory=dict)

    @property
    def run_count(self) -> int:
        return sum(self.status_counts.values())
