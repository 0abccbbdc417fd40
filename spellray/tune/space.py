"""`--param` specs of `spell hyper` to a search space, and back to command-line values.

Parsed on the submitting machine (no Ray import), checked there, and sent as plain data:
the search's driver turns them into Ray Tune domains (``to_tune``).

- grid: ``NAME=V1,V2,...`` or ``--json-param NAME='[...]'``: every combination.
- random: a value list, or ``NAME=MIN:MAX[:linear|log|reverse_log[:int|float]]``.
- bayesian: a value list, or ``NAME=MIN:MAX[:int|float]`` (Optuna samples it).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from pydantic import BaseModel

from spellray.errors import InvalidInput

SearchKind = Literal["grid", "random", "bayesian"]
SCALES = ("linear", "log", "reverse_log")
TYPES = ("int", "float")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_.-]*):")


class ParamSpec(BaseModel):
    """One parameter: a list of values, or a numeric range."""

    name: str
    values: list[str] | None = None
    min: float | None = None
    max: float | None = None
    scale: str = "linear"
    type: str = "float"

    @property
    def is_range(self) -> bool:
        return self.values is None


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"--param {spec}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidInput(f"--param {spec}: {text!r} is not a finite number")
    return value


def _split(spec: str, flag: str = "--param") -> tuple[str, str]:
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or not rest.strip():
        raise InvalidInput(f"{flag} {spec!r} is malformed: write it as {flag} NAME=VALUES")
    if not _NAME.match(name):
        raise InvalidInput(f"{flag} {spec!r}: {name!r} is not a valid parameter name")
    return name, rest.strip()


def _range(name: str, rest: str, spec: str, kind: SearchKind) -> ParamSpec:
    parts = [p.strip() for p in rest.split(":")]
    low, high = _number(parts[0], spec), _number(parts[1], spec)
    scale, type_ = "linear", "float"
    extra = parts[2:]
    if kind == "bayesian":
        if len(extra) > 1 or (extra and extra[0] not in TYPES):
            raise InvalidInput(f"--param {spec}: a bayesian range is MIN:MAX[:int|float]")
        type_ = extra[0] if extra else "float"
    else:
        if len(extra) > 2 or (extra and extra[0] not in SCALES) or \
                (len(extra) == 2 and extra[1] not in TYPES):
            raise InvalidInput(f"--param {spec}: a range is "
                               "MIN:MAX[:linear|log|reverse_log[:int|float]]")
        scale = extra[0] if extra else "linear"
        type_ = extra[1] if len(extra) == 2 else "float"
    if low >= high:
        raise InvalidInput(f"--param {spec}: MIN must be below MAX")
    if scale != "linear" and low <= 0:
        raise InvalidInput(f"--param {spec}: a {scale} range needs MIN above 0")
    if type_ == "int" and (low != int(low) or high != int(high)):
        raise InvalidInput(f"--param {spec}: an int range needs whole numbers")
    return ParamSpec(name=name, min=low, max=high, scale=scale, type=type_)


def parse_param(spec: str, kind: SearchKind) -> ParamSpec:
    name, rest = _split(spec)
    if ":" in rest and "," not in rest:
        if kind == "grid":
            raise InvalidInput(f"--param {spec}: a grid takes values (V1,V2,...), not a range; "
                               "ranges are for spell hyper random / bayesian")
        return _range(name, rest, spec, kind)
    values = [v.strip() for v in rest.split(",")]
    if any(not v for v in values):
        raise InvalidInput(f"--param {spec}: an empty value; write NAME=V1,V2,...")
    return ParamSpec(name=name, values=values)


def values_param(name: str, values: list[Any], where: str = "params") -> ParamSpec:
    """A list of values as given (from JSON or Python): strings stay, others become JSON."""
    if not _NAME.match(name):
        raise InvalidInput(f"{where}: {name!r} is not a valid parameter name")
    if not values:
        raise InvalidInput(f"{where} {name}: give a non-empty list of values")
    return ParamSpec(name=name, values=[v if isinstance(v, str) else json.dumps(v)
                                        for v in values])


def parse_json_param(spec: str) -> ParamSpec:
    name, rest = _split(spec, "--json-param")
    try:
        values = json.loads(rest)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--json-param {name}: not valid JSON ({exc.msg})") from None
    if not isinstance(values, list) or not values:
        raise InvalidInput(f"--json-param {name}: give a non-empty JSON list of values")
    return values_param(name, values, "--json-param")


def check_command(command: str, params: list[ParamSpec]) -> list[str]:
    """Refuse a `:NAME:` with no parameter and a parameter given twice; return warnings
    for parameters the command never mentions."""
    names = [p.name for p in params]
    if not names:
        raise InvalidInput("give at least one --param NAME=VALUES to search over")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(f"--param {twice[0]} is given twice; give it once")
    used = set(_PLACEHOLDER.findall(command))
    unknown = sorted(used - set(names))
    if unknown:
        raise InvalidInput(f"the command has :{unknown[0]}: but no --param {unknown[0]}=...; "
                           "give one, or remove the placeholder")
    return [f"--param {n} never appears in the command as :{n}: (it is still searched "
            "and recorded on each run)" for n in names if n not in used]


def grid_size(params: list[ParamSpec]) -> int:
    return math.prod(len(p.values or []) for p in params)


def format_value(spec: ParamSpec, value: Any) -> str:
    """What a sampled value looks like in the command and the run's params."""
    if spec.values is not None:
        return str(value)
    if spec.type == "int":
        return str(round(value))
    return repr(float(value))
