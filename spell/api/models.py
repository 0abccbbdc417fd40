"""Spell's ``spell.api.models``: the hyperparameter specs of ``client.hyper``, and the log
entries ``Run.logs()`` yields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spellray.errors import InvalidInput

LINEAR, LOG, REVERSE_LOG = "linear", "log", "reverse_log"
INT, FLOAT = "int", "float"


@dataclass(frozen=True)
class ValueSpec:
    """A parameter that takes each of ``values`` (grid, random)."""

    values: Sequence[Any]

    def to_spellray(self) -> list[Any]:
        """spellray's form: the list itself (``client.hyper.start``'s params)."""
        if isinstance(self.values, (str, bytes)) or not self.values:
            raise InvalidInput(f"ValueSpec takes a non-empty list of values, not {self.values!r}")
        return list(self.values)


@dataclass(frozen=True)
class RangeSpec:
    """A numeric range (random, bayesian): ``scaling`` linear, log or reverse_log;
    ``type`` float or int."""

    min: float
    max: float
    scaling: str = LINEAR
    type: str = FLOAT

    def to_spellray(self) -> str:
        """spellray's form: "MIN:MAX:SCALE:TYPE" (checked by spellray.tune.space)."""
        return f"{self.min}:{self.max}:{self.scaling}:{self.type}"


@dataclass(frozen=True)
class LogEntry:
    """One line of a run's log. ``status`` is the run's status when the line was read;
    ``status_event`` is True for the lines spellray adds when the status changes."""

    status: str
    log: str
    status_event: bool = False

    def __str__(self) -> str:
        return self.log


__all__ = ["FLOAT", "INT", "LINEAR", "LOG", "REVERSE_LOG", "LogEntry", "RangeSpec",
           "ValueSpec"]
