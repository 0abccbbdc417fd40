"""The console's models, model servers and cluster pages over HTTP, against a real server on
the session's Ray head: a model made from a real run's output, ONE small real model server
(its page, curl line, logs, and a prediction through the console's predict box), and the
cluster page with the local node. The server is slow to start, so the module shares it."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spellray.cluster.ray_auth import http_headers
from tests.e2e.test_console import HOSTILE, csrf, login
from tests.e2e.test_serve import serving_installation, wait_server
from tests.helpers import Spell, wait_for

pytestmark = pytest.mark.timeout(600)

TRAIN = (
    "import json, os\n"
    "os.makedirs('model', exist_ok=True)\n"
    "json.dump({'w': 2}, open('model/weights.json', 'w'))\n"
)
PREDICTOR = (
    "import json, os\n\n"
    "class Doubler:\n"
    "    def __init__(self, model_path):\n"
    "        with open(os.path.join(model_path, 'weights.json')) as f:\n"
    "            self.w = json.load(f)['w']\n\n"
    "    def predict(self, payload):\n"
    "        return {'y': payload['x'] * self.w, 'tag': payload.get('tag')}\n"
)


@pytest.fixture(scope="module")
def spell(tmp_path_factory: pytest.TempPathFactory, ray_head: str) -> Iterator[Spell]:
    with serving_installation(tmp_path_factory.mktemp("console-serve"), ray_head) as installed:
        yield installed


@pytest.fixture(scope="module")
def served(spell: Spell, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Model doubler:v1 from a real run's output, served as model server doubler."""
    project = tmp_path_factory.mktemp("doubler")
    (project / "train.py").write_text(TRAIN)
    (project / "predictor.py").write_text(PREDICTOR)
    run_id = spell.submit_background("python train.py", cwd=project)
    spell.wait_status(run_id, "complete")
    created = spell("model", "create", "doubler", f"runs/{run_id}/model")
    assert created.returncode == 0 and "doubler:v1" in created.stdout, created.stderr
    started = spell("server", "serve", "doubler:v1", "predictor.py", "--no-wait", cwd=project)
    assert started.returncode == 0, started.stderr
    return {"run_id": run_id, **wait_server(spell, "doubler", "running")}


def test_models_page(spell: Spell, served: dict) -> None:
    client, _ = login(spell)
    page = client.get("/models")
    assert page.status_code == 200
    assert "doubler:v1" in page.text and f"runs/{served['run_id']}/model" in page.text
    assert f'href="/runs/{served["run_id"]}"' in page.text
    assert 'href="/models"' in page.text and 'href="/cluster"' in page.text  # the nav


def test_model_servers_and_predict_box(spell: Spell, served: dict) -> None:
    client, _ = login(spell)
    listing = client.get("/model-servers").text
    assert 'href="/model-servers/doubler"' in listing and served["endpoint"] in listing
    assert "running" in listing and "1 of 1 running" in listing

    page = client.get("/model-servers/doubler")
    assert page.status_code == 200
    text = page.text
    assert served["endpoint"] in text and "1 of 1 running" in text
    curl = re.search(r'<pre class="copy" id="curl">(.*?)</pre>', text, re.S)[1]
    assert served["endpoint"] in curl and f"Authorization: Bearer {served['token']}" in curl
    assert "== Serve: application doubler is RUNNING" in text  # spell server logs' text
    assert client.get("/model-servers/nosuch").status_code == 404

    token = csrf(text)
    box = {"X-CSRF-Token": token, "HX-Request": "true"}
    payload = json.dumps({"x": 21, "tag": HOSTILE})
    refused = client.post("/model-servers/doubler/predict", data={"payload": payload})
    assert refused.status_code == 403  # no CSRF token
    answer = client.post("/model-servers/doubler/predict", data={"payload": payload},
                         headers=box)
    assert answer.status_code == 200, answer.text
    shown = re.search(r'<pre class="log" id="prediction">(.*?)</pre>', answer.text, re.S)[1]
    assert HOSTILE not in answer.text and "&lt;script&gt;" in shown  # escaped: user data
    assert json.loads(html.unescape(shown)) == {"y": 42, "tag": HOSTILE}
    # The answer is the one `spell server predict` gets.
    cli = spell("server", "predict", "doubler", payload)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == {"y": 42, "tag": HOSTILE}

    bad = client.post("/model-servers/doubler/predict", data={"payload": "{nope"}, headers=box)
    assert bad.status_code == 400 and "not JSON" in bad.text
    assert len(bad.text.strip().splitlines()) == 1
    # The predictor's own refusal (a missing key) is shown, not a crash page.
    wrong = client.post("/model-servers/doubler/predict", data={"payload": '{"z": 1}'},
                        headers=box)
    assert wrong.status_code == 400 and "doubler answered 400" in wrong.text, wrong.text
    # The console's predictions are in the server's logs, as any other request.
    wait_for(lambda: "POST /doubler 200" in client.get("/model-servers/doubler").text, 60,
             what="the prediction in the server's logs")


def test_cluster_page(spell: Spell, served: dict) -> None:
    nodes = httpx.get(f"{spell.ray_address}/api/v0/nodes", params={"detail": "1"},
                      headers=http_headers(), timeout=30).json()["data"]["result"]["result"]
    head = next(n for n in nodes if n["is_head_node"] and n["state"] == "ALIVE")
    cpus = head["resources_total"]["CPU"]
    client, _ = login(spell)
    page = client.get("/cluster")
    assert page.status_code == 200
    text = page.text
    assert head["node_id"] in text and head["node_ip"] in text
    assert re.search(rf"CPU [\d.]+ of {cpus:g} used", text), text
    assert 'href="/ray/"' in text
    assert 'href="/model-servers/doubler"' in text  # its replica is on the one node
    assert client.get("/ray/").status_code == 200


@pytest.mark.browser
def test_a_prediction_from_the_predict_box_in_a_browser(spell: Spell, served: dict,
                                                        tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import PAGE_TIMEOUT, launch_chromium

    link = spell("ui", "--no-browser").stdout.strip().splitlines()[-1]
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(PAGE_TIMEOUT)
            page.goto(link)
            page.goto(f"{spell.url}/model-servers/doubler")
            page.get_by_label("JSON payload").fill('{"x": 21, "tag": "from the browser"}')
            page.get_by_role("button", name="Send").click()
            expect(page.locator("#prediction")).to_contain_text('"y": 42')
            expect(page.locator("#prediction")).to_contain_text("from the browser")
            page.screenshot(path=str(tmp_path / "model-server.png"), full_page=True)
        finally:
            browser.close()
