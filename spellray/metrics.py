"""Metrics from user code: ``spellray.metrics.send_metric("accuracy", 0.93)``.

Inside a run the runner sets SPELLRAY_METRICS_FILE; each metric becomes one JSON line there,
which the runner forwards to the server (into the run's MLflow run) and checks against the
run's --stop-condition. Outside a run ``send_metric`` does nothing, so the same script runs
on a laptop unchanged.

Standard library only, on purpose: user code imports this, and it must cost nothing (no
MLflow, no httpx, no Ray). Plain ``mlflow.log_metric`` works in a run too: the runner points
MLflow at the same run.
"""

from __future__ import annotations

import json
import math
import operator
import os
import posixpath
import re
import threading
import time
from typing import IO, Any

__all__ = ["send_metric"]

METRICS_FILE_ENV = "SPELLRAY_METRICS_FILE"
# MLflow's rules for metric names (mlflow.utils.validation), so a metric that is accepted
# here is never refused by the tracking store later.
_NAME = re.compile(r"^[/\w.\- :]*$")
MAX_NAME_LENGTH = 250
_INT64 = 2**63

_lock = threading.Lock()
_file: IO[str] | None = None
_file_path: str | None = None
_next_index: dict[str, int] = {}


def _after_fork() -> None:
    # A child forked while another thread held the lock (a data loader's workers) would
    # otherwise wait for it forever.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def validate_name(name: Any) -> str:
    """``name`` if it is a valid metric name, else a ValueError that says why."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a metric name must be a non-empty string, not {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"the metric name {name[:40]!r}... is longer than "
                         f"{MAX_NAME_LENGTH} characters")
    if not _NAME.match(name):
        raise ValueError(f"the metric name {name!r} may only contain letters, digits, "
                         "underscores, dashes, periods, spaces, colons and slashes")
    normal = posixpath.normpath(name)
    if normal != name or normal == "." or normal.startswith(("..", "/")):
        raise ValueError(f"the metric name {name!r} is not a clean relative path "
                         f"(it reads as {normal!r})")
    return name


def validate_value(name: str, value: Any) -> float:
    """``value`` as a finite float, else a ValueError. Numbers only: numpy and torch
    scalars convert; booleans and strings are refused, as MLflow refuses them."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"metric {name!r}: {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric {name!r}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"metric {name!r}: {number} is not a finite number")
    return number


def validate_index(name: str, index: Any) -> int:
    if isinstance(index, bool) or not hasattr(index, "__index__"):
        raise ValueError(f"metric {name!r}: the index must be an integer, not {index!r}")
    index = operator.index(index)
    if not -_INT64 <= index < _INT64:
        raise ValueError(f"metric {name!r}: the index {index} does not fit in 64 bits")
    return index


def _open(path: str) -> IO[str]:
    global _file, _file_path
    if _file_path != path:
        if _file is not None:
            _file.close()
        # Line-buffered appends: each metric is one write, whole, even with several
        # processes of the run writing to the same file.
        _file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        _file_path = path
    assert _file is not None
    return _file


def send_metric(name: str, value: float, index: int | None = None) -> None:
    """Record ``value`` for metric ``name`` on the current run, at ``index`` (the step).

    Without ``index`` each call gets the next one for that name: 0, 1, 2, ... (after an
    explicit index, the one after it). Raises ValueError for a bad name, a value that is not
    a finite number, or an index that is not an integer. Outside a run: does nothing.
    """
    validate_name(name)
    number = validate_value(name, value)
    if index is not None:
        index = validate_index(name, index)
    path = os.environ.get(METRICS_FILE_ENV)
    if not path:
        return
    with _lock:
        if index is None:
            index = _next_index.get(name, 0)
        _next_index[name] = index + 1
        line = json.dumps({"name": name, "value": number, "index": index, "time": time.time()})
        _open(path).write(line + "\n")
