"""Workflows: a manager run (kind "workflow") that starts runs, its children, with the
code snapshots they may run on (`--repo` / `--github-repo`)."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field, field_validator

from spellray.schemas.base import Schema
from spellray.schemas.runs import CodeRef, GitSource, Run, RunRequest, RunStatus

REPO_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class WorkflowRepo(Schema):
    """A code snapshot a workflow's runs name with ``commit_label``: a code package made
    from a local git repository (``code``), or a git repository at the commit its ref had
    when the workflow was made (``git``)."""

    label: str
    code: CodeRef | None = None
    git: GitSource | None = None

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not REPO_LABEL.match(value):
            raise ValueError(f"{value!r} is not a valid repo label: use letters, digits, "
                             "'_', '.', '-' (e.g. --repo code=.)")
        return value


class WorkflowRequest(Schema):
    """`spell workflow create`: the manager's run (command, code, environment) and the
    snapshots its children may run on. ``local``: the manager runs on the user's machine
    (no Ray job); its children on the cluster."""

    run: RunRequest
    repos: list[WorkflowRepo] = Field(default_factory=list)
    local: bool = False

    @field_validator("repos")
    @classmethod
    def _unique(cls, value: list[WorkflowRepo]) -> list[WorkflowRepo]:
        labels = [repo.label for repo in value]
        if len(set(labels)) != len(labels):
            raise ValueError("a repo label is given twice; give each --repo label once")
        return value


class Workflow(Schema):
    """A workflow: its id is its manager run's number; its status is the manager's."""

    id: int
    status: RunStatus
    status_reason: str | None = None
    manager_run_id: int
    manager: Run
    # The runs the manager started, oldest first.
    runs: list[Run] = Field(default_factory=list)
    repos: list[WorkflowRepo] = Field(default_factory=list)
    stop_requested: str | None = None
    created_at: datetime
    ended_at: datetime | None = None
    # Only in the answer to a --local create: the manager's token, for the local process.
    token: str | None = None


class WorkflowList(Schema):
    workflows: list[Workflow]
    total: int
