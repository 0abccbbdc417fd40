"""Model servers on the real Ray Serve of the session's Ray head: the digits model trained by
a real run of examples/train.py served by examples/predictor.py, an update under load, an
MLflow pyfunc model with the built-in predictor, a broken predictor, batching and options.

One spellray server for the module; every test removes the model servers it made (Serve's
controller and proxy stay on the shared head, which is fine)."""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from spellray.cluster.ray_auth import http_headers
from tests.conftest import make_spell
from tests.helpers import Spell, free_port, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Eight 8x8 digits (pixels 0-16) from scikit-learn's set: what the predictor takes.
PAYLOAD_FILE = "payload.json"


@contextmanager
def serving_installation(tmp: Path, ray_head: str) -> Iterator[Spell]:
    """A spellray server with a Serve port of its own; its model servers removed and the
    server stopped at the end, whatever the tests did."""
    installation = make_spell(tmp, ray_head)
    installation.extra_env["SPELLRAY_SERVE_PORT"] = str(free_port())
    started = installation("server", "start")
    assert started.returncode == 0, started.stderr
    try:
        yield installation
    finally:
        for server in installation.api("GET", "/api/model-servers").json():
            installation("server", "rm", server["name"])
        installation("server", "stop")


@pytest.fixture(scope="module")
def spell(tmp_path_factory: pytest.TempPathFactory, ray_head: str) -> Iterator[Spell]:
    with serving_installation(tmp_path_factory.mktemp("spell-serve"), ray_head) as installation:
        yield installation


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("digits-project")
    for name in ("train.py", "predictor.py"):
        shutil.copy(EXAMPLES / name, folder / name)
    images = load_digits().data[:8].astype(int).tolist()
    (folder / PAYLOAD_FILE).write_text(json.dumps({"images": images}))
    return folder


def train(spell: Spell, project: Path, *args: str) -> int:
    run_id = spell.submit_background(
        "python train.py --data data/digits.csv " + " ".join(args), "-m", "public/digits:data",
        cwd=project)
    spell.wait_status(run_id, "complete", timeout=180)
    return run_id


def serve_applications(spell: Spell) -> dict:
    """What Ray Serve itself says (through the dashboard's REST API)."""
    return httpx.get(f"{spell.ray_address}/api/serve/applications/", headers=http_headers(),
                     timeout=30).json()["applications"]


def describe(spell: Spell, name: str) -> dict:
    response = spell.api("GET", f"/api/model-servers/{name}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_server(spell: Spell, name: str, status: str, timeout: float = 120) -> dict:
    try:
        return wait_for(lambda: (s := describe(spell, name))["status"] == status and s,
                        timeout, what=f"model server {name} to be {status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {describe(spell, name)}\n"
                             f"{spell('server', 'logs', name).stdout[-3000:]}") from None


@pytest.fixture(scope="module")
def digits(spell: Spell, project: Path) -> dict:
    """digits:v1 from a real training run, served by examples/predictor.py."""
    run_id = train(spell, project, "--epochs", "2")
    created = spell("model", "create", "digits", f"runs/{run_id}/model")
    assert created.returncode == 0 and "digits:v1" in created.stdout, created.stderr
    served = spell("server", "serve", "digits:v1", "predictor.py", cwd=project)
    assert served.returncode == 0, served.stderr
    return wait_server(spell, "digits", "running")


def test_predict_through_cli_and_http(spell: Spell, project: Path, digits: dict) -> None:
    shown = spell("server", "describe", "digits").stdout
    assert digits["token"] in shown and digits["endpoint"] in shown
    assert digits["endpoint"].endswith("/digits")
    payload = json.loads((project / PAYLOAD_FILE).read_text())

    by_file = spell("server", "predict", "digits", "-f", PAYLOAD_FILE, cwd=project)
    assert by_file.returncode == 0, by_file.stderr
    predicted = json.loads(by_file.stdout)["digits"]
    # the first eight digits of the set are 0..7; a two-epoch model gets most right
    assert sum(p == t for p, t in zip(predicted, range(8), strict=True)) >= 6
    inline = spell("server", "predict", "digits", json.dumps({"images": payload["images"][:1]}))
    assert json.loads(inline.stdout) == {"digits": predicted[:1]}

    # over HTTP, as curl would: the token as a bearer header
    headers = {"Authorization": f"Bearer {digits['token']}"}
    answer = httpx.post(digits["endpoint"], json=payload, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["digits"] == predicted
    assert answer.headers["x-spellray-model"] == "digits:v1"
    refused = httpx.post(digits["endpoint"], json=payload, timeout=30)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    wrong = httpx.post(digits["endpoint"], json=payload, timeout=30,
                       headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401

    # a bad payload: a 4xx with the predictor's own message, one line in the CLI
    bad = httpx.post(digits["endpoint"], json={"images": [[1, 2]]}, headers=headers, timeout=30)
    assert bad.status_code == 400
    assert "images must be a list of 64-pixel rows" in bad.json()["error"]["message"]
    cli_bad = spell("server", "predict", "digits", '{"images": [[1, 2]]}')
    assert cli_bad.returncode == 1 and "64-pixel rows" in cli_bad.stderr
    assert len(cli_bad.stderr.strip().splitlines()) == 1
    not_json = httpx.post(digits["endpoint"], content=b"{nope", headers=headers, timeout=30)
    assert not_json.status_code == 400

    health = spell("server", "healthcheck", "digits")
    assert health.returncode == 0 and "healthy" in health.stdout
    listing = spell("server", "list").stdout
    assert "digits" in listing and "running" in listing
    assert "POST /digits 200" in spell("server", "logs", "digits").stdout


def test_update_to_v2_under_load_fails_no_request(spell: Spell, project: Path,
                                                  digits: dict) -> None:
    run_id = train(spell, project, "--epochs", "1", "--rate", "1")
    assert "digits:v2" in spell("model", "create", "digits", f"runs/{run_id}/model").stdout
    payload = json.loads((project / PAYLOAD_FILE).read_text())
    headers = {"Authorization": f"Bearer {digits['token']}"}
    outcomes: Counter[str] = Counter()
    models: Counter[str] = Counter()
    done = threading.Event()

    def client() -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            while not done.is_set():
                try:
                    answer = http.post(digits["endpoint"], json=payload)
                    outcomes[str(answer.status_code)] += 1
                    models[answer.headers.get("x-spellray-model", "?")] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: models["digits:v1"] >= 20, 60, what="traffic on v1")
        updated = spell("server", "update", "digits", "--model", "digits:v2")
        assert updated.returncode == 0, updated.stderr
        wait_for(lambda: models["digits:v2"] >= 50, 120, what="answers from v2")
        wait_server(spell, "digits", "running")
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert set(outcomes) == {"200"}, outcomes
    assert describe(spell, "digits")["model"] == "digits:v2"


def test_mlflow_model_with_builtin_predictor_public(spell: Spell, tmp_path: Path) -> None:
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0]))
    mlflow.sklearn.save_model(model, str(tmp_path / "linear"))
    assert spell("upload", str(tmp_path / "linear"), "-n", "linear").returncode == 0
    assert "linear:v1" in spell("model", "create", "linear", "uploads/linear").stdout
    served = spell("server", "serve", "linear:v1", "--public")
    assert served.returncode == 0, served.stderr
    server = wait_server(spell, "linear", "running")
    assert server["token"] is None
    answer = httpx.post(server["endpoint"], json=[[3.0], [10.0]], timeout=30)  # no token
    assert answer.status_code == 200, answer.text
    assert [round(v, 6) for v in answer.json()] == [7.0, 21.0]
    assert spell("server", "rm", "linear").returncode == 0
    assert "linear" not in spell("server", "list").stdout
    wait_for(lambda: "linear" not in serve_applications(spell), 60,
             what="Serve to delete the application")


def test_broken_predictor_fails_with_its_traceback(spell: Spell, digits: dict,
                                                   tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_for_spellray\n\n"
                                        "class Broken:\n    def predict(self, payload):\n"
                                        "        return payload\n")
    # older Spell's form: a model (new version) of the resource, served under its name
    served = spell("model-servers", "create", "broken", digits["model_resource"], "broken.py",
                   cwd=tmp_path)
    assert served.returncode == 0, served.stderr
    assert describe(spell, "broken")["model"] == "broken:v1"
    failed = wait_server(spell, "broken", "failed", timeout=60)
    assert "no_such_module_for_spellray" in failed["status_reason"]
    logs = spell("server", "logs", "broken").stdout
    assert "Traceback" in logs and "broken.py" in logs
    assert "ModuleNotFoundError: No module named 'no_such_module_for_spellray'" in logs
    assert spell("server", "rm", "broken").returncode == 0


def test_batching_timeout_scaling_env_stop_start(spell: Spell, digits: dict,
                                                 tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(
        "import os, time\n\n"
        "class Echo:\n"
        "    def __init__(self, model_path):\n"
        "        self.greeting = os.environ['GREETING']\n"
        "    def predict(self, payloads):\n"
        "        if any(p.get('sleep') for p in payloads):\n"
        "            time.sleep(3)\n"
        "        return [{'batch': len(payloads), 'greeting': self.greeting} for p in payloads]\n")
    served = spell("server", "serve", "digits", "echo.py", "--name", "echo",
                   "--enable-batching", "--max-batch-size", "4", "--answer-timeout", "1000",
                   "--min-pods", "1", "--max-pods", "2", "-e", "GREETING=hello", cwd=tmp_path)
    assert served.returncode == 0, served.stderr
    server = wait_server(spell, "echo", "running")
    headers = {"Authorization": f"Bearer {server['token']}"}

    def ask(payload: dict) -> httpx.Response:
        return httpx.post(server["endpoint"], json=payload, headers=headers, timeout=30)

    results: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda: results.append(ask({}))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bodies = [r.json() for r in results]
    assert all(b["greeting"] == "hello" for b in bodies)
    assert max(b["batch"] for b in bodies) > 1 and max(b["batch"] for b in bodies) <= 4
    slow = ask({"sleep": True})
    assert slow.status_code == 504 and "--answer-timeout" in slow.json()["error"]["message"]

    # Serve got the options as spellray mapped them
    deployment = serve_applications(spell)["echo"]["deployments"]["ModelServer"]
    autoscaling = deployment["deployment_config"]["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"]) == (1, 2)

    stopped = spell("server", "stop", "echo")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert describe(spell, "echo")["status"] == "stopped"
    wait_for(lambda: "echo" not in serve_applications(spell), 60, what="echo off Serve")
    gone = spell("server", "predict", "echo", "{}")
    assert gone.returncode == 1 and "stopped" in gone.stderr
    assert spell("server", "start", "echo").returncode == 0  # returns once it answers
    assert ask({}).status_code == 200
    assert spell("server", "rm", "echo").returncode == 0
    assert spell("server", "describe", "echo").returncode == 5


def test_bad_input(spell: Spell, digits: dict, project: Path) -> None:
    cases = [
        (("server", "serve", "ghost:v1", "predictor.py"), 5, "there is no model ghost:v1"),
        (("server", "serve", "digits:v1", "missing.py", "--name", "x1"), 1, "no such file"),
        (("server", "serve", "digits:v1", "--name", "x2"), 1, "no MLmodel file"),
        (("server", "serve", "digits:v1", "predictor.py"), 1, "exists already"),
        (("server", "serve", "digits:v1", "predictor.py", "--name", "Bad_Name"), 1,
         "not a server name"),
        (("server", "serve", "digits:v1", "predictor.py", "--name", "x3", "-t", "NOPE"), 1,
         "unknown machine type"),
        (("server", "serve", "digits:v1", "predictor.py", "--name", "x4", "--max-batch-size",
          "4"), 1, "--max-batch-size needs --enable-batching"),
        (("server", "serve", "digits:v1", "predictor.py", "--name", "x5", "--min-pods", "3",
          "--max-pods", "2"), 1, "--max-pods must be at least --min-pods"),
        (("server", "update", "digits", "--model", "digits:v9"), 5, "there is no model"),
        (("server", "describe", "ghost"), 5, "no model server ghost"),
        (("server", "predict", "digits", "{nope"), 1, "not JSON"),
        (("server", "predict", "digits"), 1, "give the payload"),
        (("model", "rm", "digits:v2"), 1, "served by digits"),
    ]
    for args, code, words in cases:
        done = spell(*args, cwd=project)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    names = [s["name"] for s in spell.api("GET", "/api/model-servers").json()]
    assert not any(n.startswith("x") for n in names)
