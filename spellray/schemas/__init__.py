"""Pydantic request and response models shared by the SDK and the server (the wire format),
one module per resource; every name is importable from ``spellray.schemas``. Each module is
imported on first use of one of its names: the CLI's `spell run` needs runs' alone, not the
search space's or the model servers'."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spellray.schemas.base import (
        ENV_NAME,
        PARAM_NAME,
        Schema,
    )
    from spellray.schemas.cluster import (
        ClusterNode,
        ClusterStatus,
        MachineType,
        ServerInfo,
    )
    from spellray.schemas.hyper import (
        HyperList,
        HyperRequest,
        HyperSearch,
        HyperStatusReport,
        SearchStatus,
        TrialStart,
    )
    from spellray.schemas.metrics import (
        MetricBatch,
        MetricPoint,
        MetricSeries,
        MetricSummary,
        MetricValue,
        TrackingInfo,
        UiLogin,
    )
    from spellray.schemas.model_servers import (
        SERVER_NAME,
        ModelServer,
        ModelServerLogs,
        ModelServerRequest,
        ModelServerStatus,
        ModelServerUpdate,
        ServingOptions,
    )
    from spellray.schemas.models import (
        MODEL_NAME,
        Model,
        ModelFile,
        ModelRequest,
    )
    from spellray.schemas.resources import (
        Link,
        ResourceEntry,
        ResourceList,
    )
    from spellray.schemas.runs import (
        ACTIVE_STATUSES,
        MAX_DISTRIBUTED,
        TERMINAL_STATUSES,
        CodeRef,
        Environment,
        EnvironmentLog,
        GitSource,
        LogChunk,
        Mount,
        OutputFile,
        Run,
        RunList,
        RunRequest,
        RunStatus,
        StatusEvent,
        StatusReport,
        validate_label,
    )
    from spellray.schemas.stats import (
        GpuStats,
        StatsChunk,
        StatsSample,
    )
    from spellray.schemas.tensorboard import (
        TensorBoard,
        TensorBoardRequest,
    )
    from spellray.schemas.workflows import (
        Workflow,
        WorkflowList,
        WorkflowRepo,
        WorkflowRequest,
    )

_MODULE_OF = {
    "ENV_NAME": "base",
    "PARAM_NAME": "base",
    "Schema": "base",
    "ClusterNode": "cluster",
    "ClusterStatus": "cluster",
    "MachineType": "cluster",
    "ServerInfo": "cluster",
    "HyperList": "hyper",
    "HyperRequest": "hyper",
    "HyperSearch": "hyper",
    "HyperStatusReport": "hyper",
    "SearchStatus": "hyper",
    "TrialStart": "hyper",
    "MetricBatch": "metrics",
    "MetricPoint": "metrics",
    "MetricSeries": "metrics",
    "MetricSummary": "metrics",
    "MetricValue": "metrics",
    "TrackingInfo": "metrics",
    "UiLogin": "metrics",
    "SERVER_NAME": "model_servers",
    "ModelServer": "model_servers",
    "ModelServerLogs": "model_servers",
    "ModelServerRequest": "model_servers",
    "ModelServerStatus": "model_servers",
    "ModelServerUpdate": "model_servers",
    "ServingOptions": "model_servers",
    "MODEL_NAME": "models",
    "Model": "models",
    "ModelFile": "models",
    "ModelRequest": "models",
    "Link": "resources",
    "ResourceEntry": "resources",
    "ResourceList": "resources",
    "ACTIVE_STATUSES": "runs",
    "MAX_DISTRIBUTED": "runs",
    "TERMINAL_STATUSES": "runs",
    "CodeRef": "runs",
    "Environment": "runs",
    "EnvironmentLog": "runs",
    "GitSource": "runs",
    "LogChunk": "runs",
    "Mount": "runs",
    "OutputFile": "runs",
    "Run": "runs",
    "RunList": "runs",
    "RunRequest": "runs",
    "RunStatus": "runs",
    "StatusEvent": "runs",
    "StatusReport": "runs",
    "validate_label": "runs",
    "GpuStats": "stats",
    "StatsChunk": "stats",
    "StatsSample": "stats",
    "TensorBoard": "tensorboard",
    "TensorBoardRequest": "tensorboard",
    "Workflow": "workflows",
    "WorkflowList": "workflows",
    "WorkflowRepo": "workflows",
    "WorkflowRequest": "workflows",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'spellray.schemas' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"spellray.schemas.{module}"), name)
    globals()[name] = value  # the next lookup is a plain one
    return value


__all__ = [
    "ACTIVE_STATUSES",
    "ENV_NAME",
    "MAX_DISTRIBUTED",
    "MODEL_NAME",
    "PARAM_NAME",
    "SERVER_NAME",
    "TERMINAL_STATUSES",
    "ClusterNode",
    "ClusterStatus",
    "CodeRef",
    "Environment",
    "EnvironmentLog",
    "GitSource",
    "GpuStats",
    "HyperList",
    "HyperRequest",
    "HyperSearch",
    "HyperStatusReport",
    "Link",
    "LogChunk",
    "MachineType",
    "MetricBatch",
    "MetricPoint",
    "MetricSeries",
    "MetricSummary",
    "MetricValue",
    "Model",
    "ModelFile",
    "ModelRequest",
    "ModelServer",
    "ModelServerLogs",
    "ModelServerRequest",
    "ModelServerStatus",
    "ModelServerUpdate",
    "Mount",
    "OutputFile",
    "ResourceEntry",
    "ResourceList",
    "Run",
    "RunList",
    "RunRequest",
    "RunStatus",
    "Schema",
    "SearchStatus",
    "ServerInfo",
    "ServingOptions",
    "StatsChunk",
    "StatsSample",
    "StatusEvent",
    "StatusReport",
    "TensorBoard",
    "TensorBoardRequest",
    "TrackingInfo",
    "TrialStart",
    "UiLogin",
    "Workflow",
    "WorkflowList",
    "WorkflowRepo",
    "WorkflowRequest",
    "validate_label",
]
