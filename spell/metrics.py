"""Spell's ``spell.metrics``: ``send_metric(name, value, index=None)`` in a run.

The same function as ``spellray.metrics.send_metric``: a number (bool, int, float, numpy
scalar, a 0-d tensor) is a numeric metric, a str a text metric; anything else is dropped
with a ``SpellMetricWarning`` (Spell's name for it). Outside a run it does nothing.
"""

from __future__ import annotations

from spellray.metrics import MetricWarning, send_metric

# Spell's name for the warning a dropped metric gives.
SpellMetricWarning = MetricWarning

__all__ = ["SpellMetricWarning", "send_metric"]
