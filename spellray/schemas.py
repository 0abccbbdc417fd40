"""Pydantic request and response models shared by the SDK and the server (the wire format)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spellray.tune.space import ParamSpec

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class Schema(BaseModel):
    # Build each model's validator on first use, not at import: the CLI imports this module
    # in every command and most commands touch two or three of the models.
    model_config = ConfigDict(defer_build=True)


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
    # "METRIC OP VALUE[:MIN_INDEX]" (spellray.stop_conditions), kept in their normal form.
    stop_conditions: list[str] = Field(default_factory=list)
    # --distributed N: N ranks, each on a bundle of the machine type (runner/distributed.py).
    distributed: int | None = None

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
        from spellray.stop_conditions import normalize

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
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    history: list[StatusEvent] = Field(default_factory=list)
    # --distributed N (None: a single process).
    distributed: int | None = None
    # Only in the answer to a submission: --idempotent returned this existing run.
    reused: bool = False


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


class MachineType(Schema):
    name: str
    num_cpus: float = 1
    num_gpus: float = 0
    resources: dict[str, float] = Field(default_factory=dict)
    # On a cluster made by the Ray cluster launcher (spell cluster machine-type): one
    # machine of the type, its autoscaling bounds and its price (for spell cluster status).
    instance_type: str | None = None
    machine_cpus: int | None = None
    memory_gb: float | None = None
    accelerator: str | None = None
    price_per_hour: float | None = None
    min_machines: int = 0
    max_machines: int = 0
    idle_timeout_minutes: float | None = None
    spot: bool = False


class ServerInfo(Schema):
    version: str
    server_id: str
    ray_address: str
    storage_uri: str
    machine_types: list[MachineType]


class ResourceEntry(Schema):
    """One file or folder in the storage tree (or a link, at the root)."""

    path: str
    name: str
    size: int
    is_dir: bool
    modified: datetime | None = None
    link_to: str | None = None


class ResourceList(Schema):
    path: str
    entries: list[ResourceEntry]


class Link(Schema):
    alias: str
    path: str
    created_at: datetime | None = None


class TrackingInfo(Schema):
    """Where a run's MLflow run is: what the runner puts in MLFLOW_* for the command."""

    tracking_uri: str
    mlflow_run_id: str
    experiment_id: str


class MetricPoint(Schema):
    """One value of a metric, as ``spellray.metrics.send_metric`` records it. ``time`` is
    seconds since the epoch; ``index`` is MLflow's step."""

    name: str
    value: float
    index: int = Field(ge=-(2**63), lt=2**63)
    time: float = Field(ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        from spellray.metrics import validate_name

        return validate_name(value)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value


class MetricBatch(Schema):
    metrics: list[MetricPoint] = Field(max_length=10_000)


class MetricSummary(Schema):
    """One metric of a run: how many values, and the last, smallest and largest."""

    name: str
    count: int
    last: float
    min: float
    max: float
    last_index: int
    last_time: float


class MetricValue(Schema):
    index: int
    value: float
    time: float


class MetricSeries(Schema):
    name: str
    values: list[MetricValue]


class UiLogin(Schema):
    """A one-time URL (path) that logs a browser in to the MLflow UI."""

    login_path: str
    expires_in: int


# -- hyperparameter searches ---------------------------------------------------------------
class HyperRequest(Schema):
    """`spell hyper grid|random|bayesian`: the search, and the run every trial is made from
    (``run.params`` stays empty: each trial's params come from the search space)."""

    kind: Literal["grid", "random", "bayesian"]
    params: list[ParamSpec]
    run: RunRequest
    num_runs: int | None = Field(default=None, ge=1)
    parallel: int | None = Field(default=None, ge=1)
    metric: str | None = None
    aggregation: Literal["last", "avg", "min", "max"] = "last"
    mode: Literal["max", "min"] = "max"
    early_stop: bool = False
    max_concurrent: int | None = Field(default=None, ge=1)


class HyperSearch(Schema):
    id: int
    kind: str
    status: str
    status_reason: str | None = None
    command: str
    params: list[ParamSpec]
    num_runs: int | None = None
    parallel: int | None = None
    metric: str | None = None
    aggregation: str = "last"
    mode: str = "max"
    early_stop: bool = False
    max_concurrent: int | None = None
    run_ids: list[int] = Field(default_factory=list)
    ray_submission_id: str | None = None
    archived: bool = False
    created_at: datetime
    ended_at: datetime | None = None


class HyperList(Schema):
    searches: list[HyperSearch]


class TrialStart(Schema):
    params: dict[str, str]


class HyperStatusReport(Schema):
    status: Literal["complete", "stopped", "failed"]
    reason: str | None = None


# -- models and model servers (Ray Serve) -----------------------------------------------------
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# A model server's name is its Serve application's name and its route (/<name>).
SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ModelRequest(Schema):
    name: str
    version: str | None = None  # v1, v2, ... when not given
    resource: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not MODEL_NAME.match(value):
            raise ValueError(f"{value!r} is not a model name (letters, digits, . _ -)")
        return value


class Model(Schema):
    name: str
    version: str
    resource: str
    created_at: datetime


class ServingOptions(Schema):
    """What `spell server serve` and `update` take besides the model and the predictor."""

    min_pods: int = Field(1, ge=1)
    max_pods: int | None = Field(None, ge=1)
    target_requests_per_second: float | None = Field(None, gt=0)
    machine_type: str = "CPU"
    environment: Environment = Field(default_factory=Environment)
    env: dict[str, str] = Field(default_factory=dict)
    enable_batching: bool = False
    max_batch_size: int | None = Field(None, ge=1)
    request_timeout_ms: int | None = Field(None, gt=0)


class ModelServerRequest(Schema):
    name: str
    model: str  # NAME[:VERSION]
    entrypoint: str | None = None  # None: the built-in MLflow pyfunc predictor
    classname: str | None = None
    code: CodeRef | None = None
    public: bool = False
    options: ServingOptions = Field(default_factory=ServingOptions)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SERVER_NAME.match(value):
            raise ValueError(f"{value!r} is not a server name: lower-case letters, digits and "
                             "-, up to 63 (it becomes the endpoint's path)")
        return value


class ModelServerUpdate(Schema):
    """`spell server update`: what is given changes, the rest stays."""

    model: str | None = None
    entrypoint: str | None = None
    classname: str | None = None
    code: CodeRef | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # ServingOptions fields to change


class ModelServer(Schema):
    name: str
    model: str  # NAME:VERSION
    model_resource: str
    entrypoint: str | None
    classname: str | None
    status: str  # deploying, running, unhealthy, failed, stopped
    status_reason: str | None = None
    public: bool
    token: str | None = None  # only in describe (GET one server)
    endpoint: str | None = None
    options: ServingOptions
    created_at: datetime
    updated_at: datetime


class ModelServerLogs(Schema):
    text: str
class ClusterNode(Schema):
    """One Ray node, as `spell cluster status` shows it."""

    node_id: str
    ip: str
    is_head: bool
    alive: bool
    # The machine type whose resource the node advertises; "head" or "-" otherwise.
    machine_type: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    hours: float = 0
    cost: float | None = None
    # Active runs whose Ray job's driver is on this node.
    runs: list[int] = Field(default_factory=list)


class ClusterStatus(Schema):
    ray_address: str
    machine_types: list[MachineType]
    nodes: list[ClusterNode]
    # Instance hours times each machine type's table price, for every node Ray still lists
    # (alive, or ended within Ray's memory of dead nodes).
    cost: float
