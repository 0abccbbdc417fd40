"""The web console over HTTP, against a real server on the real Ray head: `spell ui`'s login,
the runs page and a run's page (facts, log, charts' data, outputs and downloads, actions), and
the front door's rules (every console route closed without a login, CSRF on changes, no path
out of a run, HTML escaped). The same pages in a real browser: test_console_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from spellray.server.console.app import console_routes
from tests.helpers import Spell, wait_for

pytestmark = pytest.mark.timeout(600)

HOSTILE = "<script>alert(1)</script>"
SCRIPT = (
    "import os, sys, time\n"
    "from spellray.metrics import send_metric\n"
    f"print('hello {HOSTILE}', flush=True)\n"
    "os.makedirs('out/deep', exist_ok=True)\n"
    "open('out/deep/result.csv', 'w').write('a,b\\n1,2\\n')\n"
    "open('out/page.html', 'w').write('<b>x</b>')\n"
    "for i in range(5):\n"
    "    send_metric('loss', 1.0 / (i + 1))\n"
    "for i in range(int(sys.argv[1])):\n"
    "    print('tick', i, flush=True)\n"
    "    time.sleep(0.5)\n"
)


def login(spell: Spell, *args: str) -> tuple[httpx.Client, str]:
    """A browser-like client logged in by `spell ui`'s link; the page it was sent to."""
    done = spell("ui", "--no-browser", *args)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{spell.url}/login?code="), link
    client = httpx.Client(base_url=spell.url, timeout=60, trust_env=False,
                          headers={"accept": "text/html"})
    opened = client.get(link.removeprefix(spell.url))
    assert opened.status_code == 303, opened.text
    cookies = opened.headers.get_list("set-cookie")
    console = next(c for c in cookies if c.startswith("spellray_console="))
    assert "Path=/;" in console and "HttpOnly" in console and "SameSite=Lax" in console
    assert any(c.startswith("spellray_ui=") and "Path=/mlflow" in c for c in cookies)
    return client, opened.headers["location"]


def csrf(page: str) -> str:
    found = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def run_in_background(spell: Spell, project: Path, seconds: int) -> int:
    (project / "work.py").write_text(SCRIPT)
    return spell.submit_background(f"python work.py {seconds}", "--label", f"tag{HOSTILE}",
                                   cwd=project)


def test_runs_and_run_pages(spell: Spell, project: Path) -> None:
    run_id = run_in_background(spell, project, 1)
    spell.wait_status(run_id, "complete")
    client, page = login(spell, str(run_id))
    assert page == f"/runs/{run_id}"

    runs = client.get("/")
    assert runs.status_code == 200
    assert f'href="/runs/{run_id}"' in runs.text and "python work.py 1" in runs.text
    assert HOSTILE not in runs.text and "tag&lt;script&gt;" in runs.text  # labels escaped
    filtered = client.get("/", params={"status": "failed"})
    assert f'href="/runs/{run_id}"' not in filtered.text
    by_text = client.get("/", params={"q": "work.py 1"})
    assert f'href="/runs/{run_id}"' in by_text.text
    bad = client.get("/", params={"status": "nonsense"})
    assert bad.status_code == 400 and "nonsense" in bad.text

    run = client.get(f"/runs/{run_id}")
    assert run.status_code == 200
    text = run.text
    assert "complete" in text and "python work.py 1" in text
    assert "hello &lt;script&gt;alert(1)&lt;/script&gt;" in text and HOSTILE not in text
    assert "result.csv" in text and "page.html" in text
    assert f'/runs/{run_id}/log.txt' in text

    data = client.get(f"/runs/{run_id}/charts.json").json()
    assert data["metrics"]["loss"] == [[0, 1, 2, 3, 4], [1.0, 0.5, 1 / 3, 0.25, 0.2]]

    got = client.get(f"/runs/{run_id}/files/out/deep/result.csv")
    assert got.status_code == 200 and got.content == b"a,b\n1,2\n"
    assert got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    html = client.get(f"/runs/{run_id}/files/out/page.html")
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-disposition"].startswith("attachment")  # never rendered
    for escape in ("../1/.spell/run.json", "%2e%2e/%2e%2e/token", "out/../.spell/log",
                   ".spell/run.json", "..%2f..%2fstate.db", "/etc/passwd"):
        answer = client.get(f"/runs/{run_id}/files/{escape}")
        assert answer.status_code in (404, 400), (escape, answer.status_code)
    whole = client.get(f"/runs/{run_id}/log.txt")
    assert whole.status_code == 200 and "tick 0" in whole.text and HOSTILE in whole.text
    assert whole.headers["content-type"].startswith("text/plain")
    assert client.get("/runs/999999").status_code == 404

    # A long log: the page holds its last 200 lines, the rest loads on demand.
    done = spell("run", "--", "python", "-c", "for i in range(450): print('line', i)",
                 cwd=project)
    assert done.returncode == 0, done.stderr
    long_id = int(re.search(r"run (\d+)", done.stderr + done.stdout).group(1))
    page = client.get(f"/runs/{long_id}").text
    log = page[page.index('<pre id="log"'):page.index("</pre>")]
    assert "line 449" in log and "line 250\n" in log and "line 249\n" not in log
    before = int(re.search(r"/log/earlier\?before=(\d+)", log).group(1))
    earlier = client.get(f"/runs/{long_id}/log/earlier", params={"before": before}).text
    assert "line 0\n" in earlier and "line 249\n" in earlier and "line 250" not in earlier
    assert "/log/earlier" not in earlier  # nothing before line 0


def test_live_log_and_actions_need_the_csrf_token(spell: Spell, project: Path) -> None:
    run_id = run_in_background(spell, project, 120)
    spell.wait_status(run_id, "running")
    client, _ = login(spell, str(run_id))
    page = client.get(f"/runs/{run_id}").text
    offset = int(re.search(rf'/runs/{run_id}/log\?offset=(\d+)', page).group(1))
    # The log grows while the run goes: the page's poller gets the new lines.
    grown = wait_for(lambda: (t := client.get(f"/runs/{run_id}/log",
                                               params={"offset": offset}).text)
                     and "tick" in t and t, timeout=60, what="new log lines")
    assert f"/runs/{run_id}/log?offset=" in grown  # and the next poller
    token = csrf(page)

    # A change without the token is refused, with it done.
    refused = client.post(f"/runs/{run_id}/labels", data={"label": "nope"})
    assert refused.status_code == 403
    wrong = client.post(f"/runs/{run_id}/labels", data={"label": "nope"},
                        headers={"X-CSRF-Token": "0" * 32})
    assert wrong.status_code == 403
    assert "nope" not in spell.run_info(run_id)["labels"]
    added = client.post(f"/runs/{run_id}/labels", data={"label": "keep"},
                        headers={"X-CSRF-Token": token})
    assert added.status_code == 204 and "keep" in spell.run_info(run_id)["labels"]
    removed = client.post(f"/runs/{run_id}/labels", data={"label": "keep", "action": "remove"},
                          headers={"X-CSRF-Token": token})
    assert removed.status_code == 204 and "keep" not in spell.run_info(run_id)["labels"]

    assert client.post(f"/runs/{run_id}/stop").status_code == 403
    stopped = client.post(f"/runs/{run_id}/stop", headers={"X-CSRF-Token": token})
    assert stopped.status_code == 204 and stopped.headers["HX-Refresh"] == "true"
    assert spell.wait_status(run_id, "stopped")["status_reason"] == "stopped by user"
    again = client.post(f"/runs/{run_id}/stop", headers={"X-CSRF-Token": token})
    assert again.status_code == 409

    rerun = client.post(f"/runs/{run_id}/rerun", headers={"X-CSRF-Token": token})
    assert rerun.status_code == 204
    new_id = int(rerun.headers["HX-Redirect"].rsplit("/", 1)[1])
    assert new_id > run_id and spell.run_info(new_id)["command"] == "python work.py 120"
    spell("kill", str(new_id))


def _console_paths(run_id: int) -> list[tuple[str, str]]:
    """Every console route (as the console app includes them), its parameters filled (a
    search, workflow or model server that does not exist: the gate answers before the page
    would)."""
    filled = {"{run_id}": str(run_id), "{path:path}": "x.txt", "{search_id}": "1",
              "{workflow_id}": str(run_id), "{name}": "nosuchserver"}
    paths = []
    for method, path in console_routes():
        for placeholder, value in filled.items():
            path = path.replace(placeholder, value)
        assert "{" not in path, f"fill {path}'s parameter in _console_paths"
        paths.append((method, path))
    return paths


def test_every_console_route_is_closed_without_a_login(spell: Spell, project: Path) -> None:
    run_id = run_in_background(spell, project, 0)
    spell.wait_status(run_id, "complete")
    routes = _console_paths(run_id)
    assert len(routes) >= 10
    anonymous = httpx.Client(base_url=spell.url, timeout=30, trust_env=False)
    for method, path in routes:
        if method == "HEAD":
            continue
        page = anonymous.request(method, path, headers={"accept": "text/html"})
        partial = anonymous.request(method, path, headers={"hx-request": "true"})
        if method == "GET":
            assert page.status_code == 303, (method, path, page.status_code)
            assert page.headers["location"] == "/static/welcome.html"
        else:
            assert page.status_code == 401, (method, path, page.status_code)
        assert partial.status_code == 401, (method, path, partial.status_code)
    welcome = anonymous.get("/static/welcome.html")
    assert welcome.status_code == 200 and "spell ui" in welcome.text
    # The console's cookie is no token for the API, and a used link opens nothing.
    client, _ = login(spell)
    assert client.get("/api/runs").status_code == 401
    # An admin token opens the console too (programs, and the benchmark).
    token = {"Authorization": f"Bearer {spell.token}"}
    assert anonymous.get("/", headers=token).status_code == 200
    # Ray's dashboard through the front door: admins only, reading only, and each run's
    # job says which run it is.
    assert anonymous.get("/ray/").status_code == 401
    assert client.get("/ray/").status_code == 200
    jobs = client.get("/ray/api/jobs/").json()
    # By its submission id: other servers' runs with the same number share the session's head.
    submission = spell.run_info(run_id)["ray_submission_id"]
    mine = next(j for j in jobs if j.get("submission_id") == submission)
    assert mine["metadata"]["spellray.run"] == str(run_id)
    assert mine["metadata"]["spellray.command"] == "python work.py 0"
    assert mine["metadata"]["spellray.kind"] == "run"
    assert mine["metadata"]["spellray.labels"] == f"tag{HOSTILE}"
    for method in ("POST", "PUT", "DELETE"):
        refused = anonymous.request(method, "/ray/api/jobs/", headers=token,
                                    json={"entrypoint": "echo no"})
        assert refused.status_code == 403, method
    # `spell ui` for a run that does not exist says so, in one line.
    missing = spell("ui", "999999", "--no-browser")
    assert missing.returncode != 0 and "there is no run 999999" in missing.stderr


def test_a_workspace_made_opened_and_stopped_from_the_console(spell: Spell) -> None:
    client, _ = login(spell)
    page = client.get("/workspaces")
    assert page.status_code == 200 and "New workspace" in page.text
    token = {"X-CSRF-Token": csrf(page.text), "HX-Request": "true"}
    bad = client.post("/workspaces", data={"action": "create", "name": "no/pe"}, headers=token)
    assert bad.status_code == 400 and "is not a workspace name" in bad.text
    made = client.post("/workspaces", headers=token,
                       data={"action": "create", "name": "fromweb", "machine_type": "CPU",
                             "pip": "", "mounts": ""})
    assert made.status_code == 204, made.text
    wait_for(lambda: spell.api("GET", "/api/workspaces/fromweb").json()["status"] == "running",
             timeout=180, what="the workspace to run")
    assert "fromweb" in client.get("/workspaces", params={"table": 1}).text
    opened = client.post("/workspaces", data={"action": "open", "name": "fromweb"},
                         headers=token)
    link = opened.headers["HX-Redirect"]
    assert link.startswith("/workspaces/login?code=")
    jupyter = httpx.Client(base_url=spell.url, timeout=60, trust_env=False)
    assert jupyter.get(link).headers["location"] == "/workspaces/fromweb/lab"
    assert jupyter.get("/workspaces/fromweb/api/kernels").status_code == 200
    stopped = client.post("/workspaces", data={"action": "stop", "name": "fromweb"},
                          headers=token)
    assert stopped.status_code == 204
    wait_for(lambda: spell.api("GET", "/api/workspaces/fromweb").json()["status"] == "stopped",
             timeout=120, what="the workspace to stop")


def test_a_runs_tensorboard_opens_from_its_page(spell: Spell, project: Path) -> None:
    done = spell("run", "--tensorboard-dir", "tb", "--", "python", "-c",
                 "import os; os.makedirs('tb', exist_ok=True); open('tb/x.txt', 'w').write('1')",
                 cwd=project)
    assert done.returncode == 0, done.stderr
    run_id = int(re.search(r"run (\d+)", done.stderr + done.stdout).group(1))
    client, _ = login(spell, str(run_id))
    page = client.get(f"/runs/{run_id}").text
    assert f'hx-post="/runs/{run_id}/tensorboard"' in page
    opened = client.post(f"/runs/{run_id}/tensorboard",
                         headers={"X-CSRF-Token": csrf(page), "HX-Request": "true"})
    assert opened.status_code == 204, opened.text
    board = opened.headers["HX-Redirect"]
    assert board.startswith("/tensorboard/")
    # The console's login opens TensorBoard too (its cookie for /tensorboard).
    assert client.get(board).status_code == 200
