"""Spell users' model server scripts, unchanged, served by the real `spell server serve` on the
session's Ray head: a ``BasePredictor`` that reads ``/model`` (a model made with
``model create --file``), takes ``--config``, batches with ``prepare`` and sends a metric;
one that takes the raw request and answers 401 itself. Two deployments in all."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spellray.cluster.ray_auth import http_headers
from tests.e2e.test_serve import describe, serve_applications, serving_installation
from tests.helpers import Spell, wait_for

# As a Spell user wrote it: no argument but --config's keys, the model read from /model.
BATCHED = '''
import json
import os

from spell.serving import BasePredictor
from spell.serving.metrics import prometheus, send_metric

ANSWERED = prometheus.Counter("answered", "answers given")


class Predictor(BasePredictor):
    def __init__(self, scale=1, label="none"):
        with open("/model/weights.json") as f:
            self.weights = json.load(f)
        self.files = sorted(os.listdir(self.model_path()))
        self.scale = scale
        self.label = label

    def prepare(self, payload):
        return payload["x"] * self.scale

    def predict(self, payload):
        send_metric("batch_size", len(payload), tag=self.label)
        ANSWERED.inc(len(payload))
        return [{"y": x * self.weights["w"], "batch": len(payload), "files": self.files,
                 "label": self.label} for x in payload]

    def health(self):
        return self.weights["w"] > 0
'''

RAW = '''
import os

from starlette.exceptions import HTTPException
from starlette.requests import Request

from spell.serving import BasePredictor


class KeyedPredictor(BasePredictor):
    def __init__(self):
        with open(os.path.join(os.environ["MODEL_PATH"], "weights.json")) as f:
            self.weights = f.read()

    async def predict(self, request: Request):
        if request.headers.get("x-api-key") != "sesame":
            raise HTTPException(status_code=401, detail="wrong or missing x-api-key")
        body = await request.json()
        return {"echo": body, "path": request.url.path, "weights": self.weights}
'''


def _ray_metric(spell: Spell, prefix: str) -> str | None:
    """A line of Ray's Prometheus export (the head's metrics port) that starts so."""
    def find(node: object) -> object:
        if isinstance(node, dict):
            if "metricsExportPort" in node:
                return node["metricsExportPort"]
            node = list(node.values())
        if isinstance(node, list):
            return next((found for item in node if (found := find(item)) is not None), None)
        return None

    port = find(httpx.get(f"{spell.ray_address}/nodes?view=summary", headers=http_headers(),
                          timeout=30).json())
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return next((line for line in text.splitlines() if line.startswith(prefix)), None)


@pytest.fixture(scope="module")
def spell(tmp_path_factory: pytest.TempPathFactory, ray_head: str) -> Iterator[Spell]:
    with serving_installation(tmp_path_factory.mktemp("spell-serving"), ray_head) as installation:
        yield installation


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, spell: Spell) -> Path:
    """The predictors, a config, and a model made of one file of an upload."""
    folder = tmp_path_factory.mktemp("spell-predictors")
    (folder / "batched.py").write_text(BATCHED)
    (folder / "keyed.py").write_text(RAW)
    (folder / "config.yaml").write_text("scale: 10\nlabel: blue\n")
    upload = folder / "trained"
    (upload / "params").mkdir(parents=True)
    (upload / "params" / "final.json").write_text(json.dumps({"w": 2}))
    (upload / "params" / "epoch1.json").write_text(json.dumps({"w": -1}))
    (upload / "notes.txt").write_text("not part of the model")
    assert spell("upload", str(upload), "-n", "trained").returncode == 0
    created = spell("model", "create", "lin", "uploads/trained",
                    "--file", "params/final.json:weights.json")
    assert created.returncode == 0, created.stderr
    assert "params/final.json -> weights.json" in created.stdout
    return folder


def test_base_predictor_batched_from_model_files_and_config(spell: Spell,
                                                            project: Path) -> None:
    described = spell("model", "describe", "lin:v1").stdout
    assert "params/final.json:weights.json" in described

    served = spell("server", "serve", "lin:v1", "batched.py", "--name", "lin",
                   "--config", "config.yaml", "--request-timeout", "300",
                   "--max-batch-size", "4", cwd=project)
    assert served.returncode == 0, served.stderr
    # serve returned only once the server answers: no waiting here
    server = describe(spell, "lin")
    headers = {"Authorization": f"Bearer {server['token']}"}
    first = httpx.post(server["endpoint"] + "/predict", json={"x": 1}, headers=headers,
                       timeout=30)
    assert first.status_code == 200, first.text
    # only the --file is in the model, at its mount path; config's keys reached __init__
    assert first.json() == {"y": 20, "batch": 1, "files": ["weights.json"], "label": "blue"}

    answers: list[httpx.Response] = []

    def ask(x: int) -> None:
        url = server["endpoint"] + ("/predict" if x % 2 else "")  # both routes predict
        answers.append(httpx.post(url, json={"x": x}, headers=headers, timeout=30))

    threads = [threading.Thread(target=ask, args=(x,)) for x in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.json()["y"] for a in answers) == [x * 10 * 2 for x in range(8)]
    batches = [a.json()["batch"] for a in answers]
    assert max(batches) > 1 and max(batches) <= 4, batches

    for path in ("/health", ""):
        health = httpx.get(server["endpoint"] + path, headers=headers, timeout=30)
        assert health.status_code == 200 and health.json()["healthy"] is True
    assert httpx.get(server["endpoint"] + "/health", timeout=30).status_code == 401
    metrics = httpx.get(server["endpoint"] + "/metrics", headers=headers, timeout=30)
    assert metrics.status_code == 200
    assert "answered_total 9.0" in metrics.text  # the predictor's own prometheus counter
    bad = httpx.post(server["endpoint"] + "/predict", json={"no_x": 1}, headers=headers,
                     timeout=30)
    assert bad.status_code == 400 and "KeyError" in bad.json()["error"]["message"]

    # Serve got Spell's --request-timeout as the batch wait
    deployment = serve_applications(spell)["lin"]["deployments"]["ModelServer"]
    assert deployment["status"] == "HEALTHY"
    options = describe(spell, "lin")["options"]
    assert options["request_timeout_ms"] == 300 and options["config"]["scale"] == 10

    # send_metric's gauge is among Ray's own metrics, tagged with the server and the tag
    sample = wait_for(lambda: _ray_metric(spell, "ray_batch_size{"), 90,
                      what="batch_size in Ray's metrics export")
    assert 'application="lin"' in sample and 'tag="blue"' in sample, sample

    # update (options from a file, as Spell's --from-file) returns once the new replicas
    # answer: the very next request is answered with the new config
    (project / "green.yaml").write_text("scale: 1\nlabel: green\n")
    (project / "update.yaml").write_text("config: green.yaml\nmax-batch-size: 2\n")
    updated = spell("server", "update", "lin", "--from-file", "update.yaml", cwd=project)
    assert updated.returncode == 0, updated.stderr
    after = httpx.post(server["endpoint"], json={"x": 3}, headers=headers, timeout=30)
    assert after.json()["label"] == "green" and after.json()["y"] == 6, after.text


def test_raw_request_predictor_answers_401_itself(spell: Spell, project: Path) -> None:
    served = spell("server", "serve", "lin:v1", "keyed.py", "--name", "keyed", "--public",
                   "--no-wait", "--node-group", "CPU", cwd=project)
    assert served.returncode == 0, served.stderr
    # right after --no-wait the server is still deploying: predict waits for it
    assert "deploying" in served.stderr
    predicted = spell("server", "predict", "keyed", '{"a": 1}')
    # the CLI sends no x-api-key: the predictor's own 401, one line
    assert predicted.returncode == 1 and "401" in predicted.stderr, predicted.stderr
    assert "wrong or missing x-api-key" in predicted.stderr
    assert "deploying" not in predicted.stderr

    endpoint = describe(spell, "keyed")["endpoint"]
    refused = httpx.post(endpoint + "/predict", json={"a": 1}, timeout=30)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "wrong or missing x-api-key"
    answer = httpx.post(endpoint + "/predict", json={"a": 1}, timeout=30,
                        headers={"x-api-key": "sesame"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"echo": {"a": 1}, "path": "/keyed/predict",
                             "weights": json.dumps({"w": 2})}
    health = spell("server", "healthcheck", "keyed")
    assert health.returncode == 0 and "healthy" in health.stdout
