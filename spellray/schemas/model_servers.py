"""Model servers on Ray Serve (spell server serve | update | start | stop ...)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import Field, field_validator

from spellray.schemas.base import Schema
from spellray.schemas.runs import CodeRef, Environment

# A model server's name is its Serve application's name and its route (/<name>).
SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ModelServerStatus(str, Enum):
    """A model server's statuses. None is terminal: a failed or stopped server can be
    started or updated again (services/model_server_status.py has the moves allowed)."""

    deploying = "deploying"
    running = "running"
    unhealthy = "unhealthy"
    failed = "failed"
    stopped = "stopped"


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
    # Spell's --request-timeout: the longest a request waits for its batch to fill (Serve's
    # batch_wait_timeout_s); giving it turns batching on. Batching's default is 500 ms.
    request_timeout_ms: int | None = Field(None, gt=0)
    # The answer deadline: a prediction still running after it answers 504.
    answer_timeout_ms: int | None = Field(None, gt=0)
    # --config FILE: keyword arguments of the predictor's __init__.
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def batching(self) -> bool:
        return self.enable_batching or self.request_timeout_ms is not None


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
    status: str  # a ModelServerStatus value
    status_reason: str | None = None
    public: bool
    token: str | None = None  # only in describe (GET one server)
    endpoint: str | None = None
    options: ServingOptions
    created_at: datetime
    updated_at: datetime


class ModelServerLogs(Schema):
    text: str
