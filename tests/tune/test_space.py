"""`--param` specs: parsed, checked against the command, and turned into Tune domains."""

from __future__ import annotations

import pytest

from spellray.errors import InvalidInput
from spellray.tune.space import (
    ParamSpec,
    check_command,
    format_value,
    grid_size,
    parse_json_param,
    parse_param,
)


def test_value_lists_and_ranges() -> None:
    assert parse_param("rate=0.001, 0.01,0.1", "grid").values == ["0.001", "0.01", "0.1"]
    spec = parse_param("rate=0.0001:0.1:log", "random")
    assert (spec.min, spec.max, spec.scale, spec.type) == (0.0001, 0.1, "log", "float")
    spec = parse_param("layers=2:10:linear:int", "random")
    assert (spec.scale, spec.type) == ("linear", "int")
    assert parse_param("m=0.5:0.99:reverse_log", "random").scale == "reverse_log"
    assert parse_param("layers=2:10:int", "bayesian").type == "int"
    assert parse_param("opt=adam,sgd", "bayesian").values == ["adam", "sgd"]


@pytest.mark.parametrize(("spec", "kind", "words"), [
    ("rate", "grid", "malformed"),
    ("rate=", "grid", "malformed"),
    ("9rate=1", "grid", "not a valid parameter name"),
    ("rate=1,,2", "grid", "an empty value"),
    ("rate=0:1", "grid", "a grid takes values"),
    ("rate=1:0", "random", "MIN must be below MAX"),
    ("rate=0:1:log", "random", "needs MIN above 0"),
    ("rate=a:1", "random", "is not a number"),
    ("rate=0:nan", "random", "not a finite number"),
    ("n=1.5:4:linear:int", "random", "whole numbers"),
    ("rate=0:1:cubic", "random", "a range is"),
    ("rate=0:1:log", "bayesian", "a bayesian range is MIN:MAX"),
])
def test_malformed_specs_are_refused(spec: str, kind: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_param(spec, kind)  # type: ignore[arg-type]


def test_json_params() -> None:
    assert parse_json_param('layers=[[64, 64], [128], "x"]').values == ["[64, 64]", "[128]", "x"]
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_json_param("layers=[1,")
    with pytest.raises(InvalidInput, match="non-empty JSON list"):
        parse_json_param("layers={}")


def test_command_placeholders_are_checked() -> None:
    rate = parse_param("rate=1,2", "grid")
    seed = parse_param("seed=1,2", "grid")
    assert check_command("python t.py --rate :rate:", [rate]) == []
    warnings = check_command("python t.py --rate :rate:", [rate, seed])
    assert len(warnings) == 1 and "seed never appears" in warnings[0]
    with pytest.raises(InvalidInput, match=r"has :layers: but no --param layers"):
        check_command("python t.py :rate: :layers:", [rate])
    with pytest.raises(InvalidInput, match="given twice"):
        check_command(":rate:", [rate, rate])
    with pytest.raises(InvalidInput, match="at least one --param"):
        check_command("python t.py", [])
    assert grid_size([rate, seed, parse_param("x=a,b,c", "grid")]) == 12


def test_values_look_like_what_was_asked() -> None:
    assert format_value(ParamSpec(name="n", min=1, max=9, type="int"), 3.7) == "4"
    assert format_value(ParamSpec(name="r", min=0.1, max=1.0), 0.25) == "0.25"
    assert format_value(ParamSpec(name="o", values=["adam"]), "adam") == "adam"


def test_tune_domains() -> None:
    from ray import tune

    from spellray.tune.driver import domain

    assert domain(parse_param("a=1,2", "grid"), "grid") == tune.grid_search(["1", "2"])
    sampled = [domain(parse_param("n=1:3:linear:int", "random"), "random").sample()
               for _ in range(200)]
    assert set(sampled) == {1, 2, 3}  # MAX included, as Spell's ranges
    rev = domain(parse_param("m=0.5:0.99:reverse_log", "random"), "random")
    values = [rev.func(None) for _ in range(500)]
    assert all(0.5 <= v <= 0.99 for v in values)
    assert sum(v > 0.745 for v in values) > 250  # dense near MAX
