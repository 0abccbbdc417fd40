"""spell.serving as spellray builds it: how a BasePredictor is built (config, no model path),
what is checked before deploying, the raw-request annotation, and the metrics helpers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from spell.serving import BasePredictor
from spell.serving.metrics import metric_name, prometheus, send_metric
from spellray.errors import InvalidInput
from spellray.serve.predictor import check_class, construct, load_module, takes_request


class Spelled(BasePredictor):
    def __init__(self, scale: int = 1) -> None:
        self.scale = scale

    def predict(self, payload):
        return payload * self.scale


class Plain:
    def __init__(self, model_path: str, scale: int = 1) -> None:
        self.path, self.scale = model_path, scale

    def predict(self, payload):
        return payload


def test_base_predictor_gets_config_not_the_path_and_others_get_both() -> None:
    built = construct(Spelled, "/models/x", {"scale": 3})
    assert built.predict(2) == 6
    assert construct(Spelled, "/models/x").scale == 1
    plain = construct(Plain, "/models/x", {"scale": 4})
    assert (plain.path, plain.scale) == ("/models/x", 4)


def test_check_class_names_what_is_wrong() -> None:
    check_class(Spelled, {"scale": 2}, "p.py")
    with pytest.raises(InvalidInput, match=r"p.py: Spelled.__init__ does not fit the --config "
                                           r"keys \(other\)"):
        check_class(Spelled, {"other": 1}, "p.py")

    class NoPredict(BasePredictor):
        pass

    with pytest.raises(InvalidInput, match="NoPredict has no predict"):
        check_class(NoPredict, {}, "p.py")


def test_model_path_follows_model_path_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_PATH", raising=False)
    assert Spelled().model_path("w.json") == "/model/w.json"
    monkeypatch.setenv("MODEL_PATH", "/tmp/replica/model")
    assert Spelled().model_path("a", "b") == "/tmp/replica/model/a/b"
    assert Spelled().health() is True and Spelled().prepare(5) == 5


def test_raw_request_is_told_by_the_annotation(tmp_path: Path) -> None:
    # As users write it, with postponed annotations (strings) and without
    (tmp_path / "raw.py").write_text(
        "from __future__ import annotations\n"
        "from starlette.requests import Request\n"
        "from spell.serving import BasePredictor\n"
        "class Raw(BasePredictor):\n"
        "    async def predict(self, request: Request):\n        return 1\n"
        "class Json(BasePredictor):\n"
        "    def predict(self, payload: dict):\n        return 1\n")
    module = load_module(tmp_path, "raw.py")
    assert takes_request(module.Raw().predict)
    assert not takes_request(module.Json().predict)
    assert not takes_request(Spelled().predict)


def test_send_metric_never_fails_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        send_metric("latency ms", "fast")
    assert "not a number; dropped" in caplog.text
    assert metric_name("latency ms/p50") == "latency_ms_p50"
    assert metric_name("9lives") == "m_9lives"
    assert prometheus.Counter is not None  # the prometheus_client module itself


def test_sdk_takes_spells_node_group_as_the_machine_type() -> None:
    from spellray.client.model_servers import _node_group

    assert _node_group({"node_group": "GPU", "min_pods": 2}) == {"machine_type": "GPU",
                                                                 "min_pods": 2}
    assert _node_group({"serving_group": "CPU"}) == {"machine_type": "CPU"}
    with pytest.raises(InvalidInput, match="disagree"):
        _node_group({"node_group": "GPU", "machine_type": "CPU"})
    with pytest.raises(InvalidInput, match="same thing"):
        _node_group({"node_group": "GPU", "serving_group": "CPU"})
