"""Spell's model-server metrics: ``from spell.serving.metrics import send_metric``.

``send_metric(name, value, tag=None)`` records a gauge through Ray Serve's metrics
(``ray.serve.metrics.Gauge``), so it is exported with Ray's own metrics (Ray's Prometheus
endpoint, Grafana), tagged with the server's application, deployment and replica. ``prometheus``
is the ``prometheus_client`` module, for predictors that make their own counters and
histograms; spellray's model servers answer those at ``GET <endpoint>/metrics`` (the replica's
default registry, in Prometheus' text format). Outside a model server replica both are
harmless: ``send_metric`` does nothing.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import prometheus_client as prometheus

__all__ = ["prometheus", "send_metric"]

log = logging.getLogger(__name__)
_gauges: dict[str, Any] = {}
_lock = threading.Lock()
# Ray's metric names follow Prometheus': letters, digits, _ and :.
_BAD = re.compile(r"[^a-zA-Z0-9_:]")


def metric_name(name: str) -> str:
    cleaned = _BAD.sub("_", name.strip())
    return cleaned if cleaned and not cleaned[0].isdigit() else f"m_{cleaned}"


def _gauge(name: str) -> Any:
    from ray.serve.metrics import Gauge

    with _lock:
        if name not in _gauges:
            _gauges[name] = Gauge(metric_name(name), description=f"spell send_metric {name}",
                                  tag_keys=("tag",))
        return _gauges[name]


def send_metric(name: str, value: float, tag: str | None = None) -> None:
    """Set gauge ``name`` to ``value`` (for ``tag``, when given). A value that is not a
    number is dropped with a warning rather than failing the request."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        log.warning("spell.serving.metrics.send_metric(%r): %r is not a number; dropped",
                    name, value)
        return
    try:
        _gauge(name).set(number, tags={"tag": "" if tag is None else str(tag)})
    except Exception as exc:  # outside a replica, or Ray refusing the name: never fail predict
        log.warning("spell.serving.metrics.send_metric(%r) not recorded: %s", name, exc)
