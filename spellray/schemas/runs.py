"""Runs: the request, the run, its statuses, logs and outputs."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import Field, field_validator

from spellray.schemas.base import ENV_NAME, PARAM_NAME, Schema


class RunStatus(str, Enum):
    """Spell's run statuses. Order matters: a run only moves forward through them."""

    requested = "requested"
    building = "building"
    running = "running"
    saving = "saving"
    complete = "complete"
    failed = "failed"
    stopped = "stopped"
    killed = "killed"
    interrupted = "interrupted"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RunStatus.complete, RunStatus.failed, RunStatus.stopped, RunStatus.killed,
     RunStatus.interrupted}
)
ACTIVE_STATUSES = frozenset(set(RunStatus) - TERMINAL_STATUSES)


class CodeRef(Schema):
    """The code a run executes: a content-addressed package in storage."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    git_commit: str | None = None
    git_dirty: bool | None = None


class Mount(Schema):
    """`-m RESOURCE[:PATH]`: a storage resource (or a link) materialized at PATH before the
    command starts. ``resolved`` is the storage path the server found for ``resource``."""

    resource: str
    path: str
    resolved: str | None = None


class Environment(Schema):
    """What a run's machine needs besides the code: `--pip`, `--pip-req` (the file's lines),
    `--apt`, `--conda-file` (the parsed file), `--docker-image`, `--framework`."""

    pip: list[str] = Field(default_factory=list)
    pip_requirements: list[str] = Field(default_factory=list)
    apt: list[str] = Field(default_factory=list)
    conda: dict[str, Any] | None = None
    docker_image: str | None = None
    framework: str | None = None

    @property
    def is_empty(self) -> bool:
        return self == Environment()


class GitSource(Schema):
    """`--github-url URL [--github-ref REF]`: code fetched from a git repository by the
    runner. ``commit`` is the sha the server resolved REF to at submission."""

    url: str
    ref: str | None = None
    commit: str | None = None


# The most ranks one --distributed run may ask for.
MAX_DISTRIBUTED = 256
# --max-resumes: its default (Spell's), and the most one run may ask for.
DEFAULT_MAX_RESUMES = 5
MAX_RESUMES = 100


class RunRequest(Schema):
    command: str
    machine_type: str = "CPU"
    env: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    labels: list[str] = Field(default_factory=list)
    code: CodeRef | None = None
    git: GitSource | None = None
    mounts: list[Mount] = Field(default_factory=list)
    environment: Environment = Field(default_factory=Environment)
    # Return an identical earlier run that is active or complete instead of starting one.
    idempotent: bool = False
    timeout_minutes: float | None = Field(default=None, gt=0)
    # "METRIC OP VALUE[:MIN_INDEX]" (spellray.schemas.stop_conditions), kept in their normal form.
    stop_conditions: list[str] = Field(default_factory=list)
    # --distributed N: N ranks, each on a bundle of the machine type (runner/launch/distributed.py).
    distributed: int | None = None
    # Inside a workflow: run on the snapshot its `--repo LABEL=...` named (no code of its own).
    commit_label: str | None = None
    # --tensorboard-dir PATH, as given (relative, or under /spell/): the folder of the working
    # folder the runner copies into storage as the run goes (runner/live_sync.py).
    tensorboard_dir: str | None = None
    # --auto-resume / --disable-auto-resume; None: the machine type's --default-auto-resume.
    # An interrupted run is started again (up to max_resumes times) from its saved outputs.
    auto_resume: bool | None = None
    max_resumes: int = DEFAULT_MAX_RESUMES
    # -p/--project NAME (`spell project create NAME` made it); None: uncategorized.
    project: str | None = None

    @field_validator("max_resumes")
    @classmethod
    def _max_resumes(cls, value: int) -> int:
        if not 0 <= value <= MAX_RESUMES:
            raise ValueError(f"--max-resumes {value}: give how many times an interrupted run "
                             f"may be started again, from 0 to {MAX_RESUMES}")
        return value

    @field_validator("distributed")
    @classmethod
    def _distributed(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_DISTRIBUTED:
            raise ValueError(f"--distributed {value}: give the number of ranks, "
                             f"from 1 to {MAX_DISTRIBUTED}")
        return value

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the command is empty: give one, e.g. spell run \"python train.py\"")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return value

    @field_validator("params")
    @classmethod
    def _param_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not PARAM_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid parameter name")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            validate_label(label)
        return sorted(set(value))

    @field_validator("stop_conditions")
    @classmethod
    def _stop_conditions(cls, value: list[str]) -> list[str]:
        from spellray.schemas.stop_conditions import normalize

        return normalize(value)


def validate_label(label: str) -> str:
    if not label or len(label) > 100 or any(c.isspace() for c in label):
        raise ValueError(f"{label!r} is not a valid label: use 1-100 characters, no spaces")
    return label


class StatusEvent(Schema):
    status: RunStatus
    reason: str | None = None
    at: datetime


class Run(Schema):
    id: int
    kind: str = "run"
    status: RunStatus
    status_reason: str | None = None
    exit_code: int | None = None
    command: str
    machine_type: str
    env: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    labels: list[str] = Field(default_factory=list)
    code: CodeRef | None = None
    git: GitSource | None = None
    mounts: list[Mount] = Field(default_factory=list)
    environment: Environment = Field(default_factory=Environment)
    environment_digest: str | None = None
    timeout_minutes: float | None = None
    stop_conditions: list[str] = Field(default_factory=list)
    # The run's MLflow run, once the runner (or a first metric) made it.
    mlflow_run_id: str | None = None
    ray_submission_id: str | None = None
    # While it waits in the queue: "waiting for a CPU machine (37 ahead)".
    waiting: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    history: list[StatusEvent] = Field(default_factory=list)
    # --distributed N (None: a single process).
    distributed: int | None = None
    # Only in the answer to a submission: --idempotent returned this existing run.
    reused: bool = False
    # The workflow the run belongs to (its manager's number) and the run that started it.
    workflow_id: int | None = None
    parent_run_id: int | None = None
    owner: str | None = None  # a user's or a team's name
    # --tensorboard-dir, relative to the working folder: its files are live in runs/<id>/<it>/.
    tensorboard_dir: str | None = None
    # Auto-resume (docs/spot.md): on, how many times, and the chain both ways.
    auto_resume: bool = False
    max_resumes: int = DEFAULT_MAX_RESUMES
    resumed_from: int | None = None
    resumed_as: int | None = None
    # Interrupted with auto-resume, and the server is still to resume it (resumed_as comes,
    # or the reason says why not): what a waiter waits on before it follows the chain.
    resume_pending: bool = False
    project: str | None = None  # None: uncategorized
    # `spell archive RUN`: when; an archived run is out of `spell ps`, `ls runs/` and mounts.
    archived_at: datetime | None = None


class EnvironmentLog(Schema):
    """The tail of Ray's runtime_env set-up log for a run whose environment is being built
    (or failed to build); empty when there is none on this node."""

    text: str
    source: str | None = None


class RunList(Schema):
    runs: list[Run]
    total: int


class StatusReport(Schema):
    """What the runner tells the server as a run moves on."""

    status: RunStatus
    reason: str | None = None
    exit_code: int | None = None


class LogChunk(Schema):
    text: str
    offset: int
    status: RunStatus
    status_reason: str | None = None
    exit_code: int | None = None
    # True once the run is terminal and ``text`` reached the end of its saved log.
    finished: bool


class OutputFile(Schema):
    path: str
    size: int
