"""Metrics from user code: ``spellray.metrics.send_metric("accuracy", 0.93)``.

Inside a run the runner sets SPELLRAY_METRICS_FILE; each metric becomes one JSON line there,
which the runner forwards to the server and checks against the run's --stop-condition.
Numbers go to the run's MLflow run; text values (``send_metric("phase", "warm-up")``), and
numbers whose name MLflow refuses, go to spellray's own database (MLflow has no text
metrics). Outside a run ``send_metric`` does nothing, so the same script runs on a laptop
unchanged. As on Spell, a value it cannot record is dropped with a warning
(``MetricWarning``): a metric never crashes the user's training.

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
import warnings
from typing import IO, Any

__all__ = ["MetricWarning", "send_metric"]

METRICS_FILE_ENV = "SPELLRAY_METRICS_FILE"
# MLflow's rules for metric names (mlflow.utils.validation), so a metric that is accepted
# here is never refused by the tracking store later.
_NAME = re.compile(r"^[/\w.\- :]*$")
MAX_NAME_LENGTH = 250
# A text metric's longest value: a status line or a short note, not a log.
MAX_TEXT_LENGTH = 10_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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


class MetricWarning(UserWarning):
    """A metric was dropped (Spell's ``SpellMetricWarning``): the training goes on."""


def check_name(name: Any) -> str:
    """``name`` if it can name a metric at all, as on Spell: any non-empty string of at most
    MAX_NAME_LENGTH characters without control characters (spaces, ``/`` and non-ASCII
    letters are fine). Else a ValueError that says why."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a metric name must be a non-empty string, not {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"the metric name {name[:40]!r}... is longer than "
                         f"{MAX_NAME_LENGTH} characters")
    if _CONTROL.search(name):
        raise ValueError(f"the metric name {name!r} holds a control character")
    return name


def mlflow_accepts(name: str) -> bool:
    """Whether MLflow takes ``name`` as a metric name (else spellray keeps it itself)."""
    try:
        validate_name(name)
    except ValueError:
        return False
    return True


def validate_name(name: Any) -> str:
    """``name`` if MLflow accepts it as a metric name (what a --stop-condition may name),
    else a ValueError that says why."""
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


def validate_text(name: str, value: str) -> str:
    if len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"metric {name!r}: a text value is at most {MAX_TEXT_LENGTH} "
                         f"characters, not {len(value)}")
    return value


def metric_value(name: str, value: Any) -> float | str:
    """What ``value`` records as: a str is a text metric; a bool, an int, a float, a numpy
    scalar or a 0-d tensor is a number (finite). Else a ValueError that says why."""
    if isinstance(value, str):
        return validate_text(name, value)
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy's bool too
        return float(bool(value))
    if isinstance(value, bytes):
        raise ValueError(f"metric {name!r}: {value!r} is bytes; send a str or a number")
    if not isinstance(value, (int, float)) and callable(getattr(value, "item", None)):
        try:
            value = value.item()  # a numpy scalar or a one-element tensor/array
        except Exception:  # torch raises RuntimeError for a tensor of several values
            raise ValueError(f"metric {name!r}: a {type(value).__name__} with more than "
                             "one value is not a metric; send one number") from None
        if isinstance(value, bool):
            return float(value)
    return validate_value(name, value)


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


def _warn(message: str) -> None:
    warnings.warn(message, MetricWarning, stacklevel=3)


def send_metric(name: str, value: float | str, index: int | None = None) -> None:
    """Record ``value`` for metric ``name`` on the current run, at ``index`` (the step).

    A number (bool, int, float, numpy scalar, 0-d tensor) is a numeric metric; a str is a
    text metric. Without ``index`` each call gets the next one for that name: 0, 1, 2, ...
    (after an explicit index, the one after it). A bad name or value is dropped with a
    MetricWarning, a bad index ignored with one, as Spell did. Outside a run: does nothing.
    """
    path = os.environ.get(METRICS_FILE_ENV)
    if not path:
        return
    try:
        check_name(name)
        recorded = metric_value(name, value)
    except ValueError as exc:
        _warn(f"metric discarded: {exc}")
        return
    if index is not None:
        try:
            index = validate_index(name, index)
        except ValueError as exc:
            _warn(f"index ignored: {exc}")
            index = None
    with _lock:
        if index is None:
            index = _next_index.get(name, 0)
        _next_index[name] = index + 1
        line = json.dumps({"name": name, "value": recorded, "index": index,
                           "time": time.time()}, ensure_ascii=False)
        _open(path).write(line + "\n")
