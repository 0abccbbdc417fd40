"""`spell run --stop-condition "METRIC OP VALUE[:MIN_INDEX]"`: stop a run when a metric
meets a condition (at index MIN_INDEX or later), the way `spell stop` does: outputs saved.

Parsed in the CLI and SDK (a bad one is refused before anything runs), carried on the run as
its normal form (``str(condition)``), and checked by the runner on each metric as it
arrives. Standard library only: the runner imports this next to user code.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from spellray.metrics import validate_name

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "<": operator.lt, ">": operator.gt,
}
# The operator splits the text: metric names may hold ':' and spaces, never '<', '>', '='.
_FORM = re.compile(r"^\s*(?P<metric>[^<>=]+?)\s*(?P<op><=|>=|==|<|>)\s*(?P<value>[^:<>=]+?)\s*"
                   r"(?::\s*(?P<min_index>[^:]*?)\s*)?$")
USAGE = 'write it as "METRIC OP VALUE[:MIN_INDEX]" with OP one of < <= > >= ==, e.g. ' \
        '"accuracy >= 0.9:5"'


@dataclass(frozen=True)
class StopCondition:
    metric: str
    op: str
    value: float
    min_index: int = 0

    def met(self, name: str, value: float, index: int) -> bool:
        return (name == self.metric and index >= self.min_index
                and OPERATORS[self.op](value, self.value))

    def __str__(self) -> str:
        value = repr(self.value).removesuffix(".0")  # exact: 0.1234567 stays itself
        text = f"{self.metric} {self.op} {value}"
        return f"{text}:{self.min_index}" if self.min_index else text


def parse(text: str) -> StopCondition:
    """A condition from its text; ValueError (one line, saying how to write it) if malformed."""
    match = _FORM.match(text or "")
    if match is None:
        raise ValueError(f"the stop condition {text!r} is malformed: {USAGE}")
    metric, op = match["metric"], match["op"]
    try:
        validate_name(metric)
    except ValueError as exc:
        raise ValueError(f"the stop condition {text!r}: {exc}") from None
    try:
        value = float(match["value"])
    except ValueError:
        raise ValueError(f"the stop condition {text!r}: {match['value']!r} is not a number; "
                         f"{USAGE}") from None
    if not math.isfinite(value):
        raise ValueError(f"the stop condition {text!r}: the value must be a finite number")
    min_index = 0
    if match["min_index"] is not None:
        raw = match["min_index"]
        if not re.fullmatch(r"\d+", raw):
            raise ValueError(f"the stop condition {text!r}: MIN_INDEX {raw!r} must be a "
                             "whole number >= 0")
        min_index = int(raw)
    return StopCondition(metric, op, value, min_index)


def normalize(texts: list[str]) -> list[str]:
    """Each condition in its normal form; ValueError for the first malformed one."""
    return [str(parse(text)) for text in texts]
