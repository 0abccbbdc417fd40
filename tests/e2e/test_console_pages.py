"""The console's searches and workflows pages over HTTP, against a real server on the real
Ray head: a real grid search (its trials best first with their parameters, the chart's
points, kill), a real workflow (its runs as a tree, stop), CSRF on their actions and their
commands escaped. The runs pages and the front door: test_console.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_console import HOSTILE, csrf, login
from tests.e2e.test_hyper import search, search_id_of, wait_search
from tests.helpers import Spell, wait_for

pytestmark = pytest.mark.timeout(600)

# Each trial sends m = 10 * x once: with --mode max the best trial is x=3.
SEND = ("python -c \"import sys; from spellray.metrics import send_metric; "
        f"send_metric('m', 10 * float(sys.argv[1]))\" :x: # {HOSTILE}")
SLOW = "python -c 'import time\nfor i in range(600): print(i, flush=True); time.sleep(0.2)' :x:"
KEEPS_GOING = ("python -c \"import time\nfor i in range(900):\n print('tick', i, flush=True)"
               "\n time.sleep(0.2)\"")
MANAGER = (
    "import time\nfrom spellray.client import from_environment\n"
    "client = from_environment()\n"
    "client.runs.wait(client.runs.new('echo first').id)\n"
    f"client.runs.new({KEEPS_GOING!r})\n"
    "print('started both', flush=True)\ntime.sleep(600)\n")


def _trial_rows(page: str) -> list[tuple[int, str, str]]:
    """(run, x, m) of each row of a search page's trials table, in the page's order."""
    table = page[page.index('<section id="trials"'):page.index("</section>",
                                                               page.index('id="trials"'))]
    rows = re.findall(r'<a href="/runs/(\d+)">.*?<td class="param"><code>([^<]*)</code></td>'
                      r'\s*<td class="score">([^<]*)</td>', table, re.S)
    return [(int(run), x, m) for run, x, m in rows]


def test_a_grid_search_best_first_with_its_chart(spell: Spell, project: Path) -> None:
    done = spell("hyper", "grid", "--param", "x=1,2,3", "--metric", "m", SEND, cwd=project)
    search_id = search_id_of(done)
    ended = wait_search(spell, search_id, "complete")
    assert [r["status"] for r in ended["runs"]] == ["complete"] * 3
    client, _ = login(spell)

    listed = client.get("/searches")
    assert listed.status_code == 200
    assert f'href="/searches/{search_id}"' in listed.text and "grid" in listed.text
    assert HOSTILE not in listed.text and "# &lt;script&gt;alert(1)&lt;/script&gt;" in \
        listed.text
    with_archived = client.get("/searches", params={"all": "1"})
    assert with_archived.status_code == 200 and f'href="/searches/{search_id}"' in \
        with_archived.text

    page = client.get(f"/searches/{search_id}")
    assert page.status_code == 200
    assert HOSTILE not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "x=1,2,3" in page.text and "(last, max)" in page.text
    rows = _trial_rows(page.text)
    by_x = {r["params"]["x"]: r["id"] for r in ended["runs"]}
    assert rows == [(by_x["3"], "3", "30"), (by_x["2"], "2", "20"), (by_x["1"], "1", "10")]
    assert "hx-post" not in page.text  # an ended search has no stop or kill

    data = client.get(f"/searches/{search_id}/chart.json").json()
    assert data["x"] == "run"
    ids = sorted(by_x.values())
    scores = {v: 10.0 * int(k) for k, v in by_x.items()}
    assert data["metrics"] == {"m": [ids, [scores[i] for i in ids]]}

    token = csrf(page.text)
    again = client.post(f"/searches/{search_id}/stop", headers={"X-CSRF-Token": token,
                                                               "HX-Request": "true"})
    assert again.status_code == 409 and "already ended" in again.text
    assert client.get("/searches/999999").status_code == 404


def test_killing_a_search_from_its_page(spell: Spell, project: Path) -> None:
    done = spell("hyper", "grid", "--param", "x=1", SLOW, cwd=project)
    search_id = search_id_of(done)
    wait_for(lambda: [r for r in search(spell, search_id)["run_ids"]
                      if spell.run_info(r)["status"] == "running"],
             120, what="a trial to be running")
    client, _ = login(spell)
    page = client.get(f"/searches/{search_id}").text
    assert f'hx-post="/searches/{search_id}/kill"' in page and "hx-confirm" in page
    assert 'hx-select="#trials"' in page  # the table follows the trials while they go
    assert client.post(f"/searches/{search_id}/kill").status_code == 403
    killed = client.post(f"/searches/{search_id}/kill", headers={"X-CSRF-Token": csrf(page)})
    assert killed.status_code == 204 and killed.headers["HX-Refresh"] == "true"
    ended = wait_search(spell, search_id, "killed")
    assert {r["status"] for r in ended["runs"]} == {"killed"}


def test_a_workflow_tree_and_stop(spell: Spell, tmp_path: Path) -> None:
    (tmp_path / "manager.py").write_text(MANAGER)
    done = spell("workflow", "create", "-b", f"python manager.py # {HOSTILE}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    workflow_id = int(done.stdout.split()[1])

    def running_second() -> list[dict] | None:
        runs = spell.api("GET", f"/api/workflows/{workflow_id}").json()["runs"]
        return runs if len(runs) == 2 and runs[1]["status"] == "running" else None

    first, second = wait_for(running_second, timeout=180, what="the second run to be running")
    client, _ = login(spell)
    listed = client.get("/workflows")
    assert listed.status_code == 200 and f'href="/workflows/{workflow_id}"' in listed.text
    assert HOSTILE not in listed.text and "&lt;script&gt;" in listed.text

    page = client.get(f"/workflows/{workflow_id}")
    assert page.status_code == 200
    text = page.text
    assert HOSTILE not in text and "# &lt;script&gt;alert(1)&lt;/script&gt;" in text
    tree = text[text.index('<section id="tree"'):]
    # the manager first, its two runs nested under it, each with its status
    manager_at = tree.index(f'<a href="/runs/{workflow_id}">run {workflow_id}</a>')
    first_at = tree.index(f'<a href="/runs/{first["id"]}">run {first["id"]}</a>')
    second_at = tree.index(f'<a href="/runs/{second["id"]}">run {second["id"]}</a>')
    assert manager_at < tree.index("<ul>", manager_at) < first_at < second_at
    assert re.search(rf'run {first["id"]}</a>.*?status complete', tree, re.S)
    assert re.search(rf'run {second["id"]}</a>.*?status running', tree, re.S)
    assert "echo first" in tree

    token = csrf(text)
    assert client.post(f"/workflows/{workflow_id}/stop").status_code == 403
    assert client.post(f"/workflows/{workflow_id}/stop",
                       headers={"X-CSRF-Token": "0" * 32}).status_code == 403
    assert spell.run_info(second["id"])["status"] == "running"
    stopped = client.post(f"/workflows/{workflow_id}/stop", headers={"X-CSRF-Token": token})
    assert stopped.status_code == 204 and stopped.headers["HX-Refresh"] == "true"
    spell.wait_status(second["id"], "stopped")
    spell.wait_status(workflow_id, "stopped")
    assert client.get("/workflows/999999").status_code == 404
