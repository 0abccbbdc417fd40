"""Workspaces end to end: `spell jupyter NAME` on the local cluster, a real JupyterLab and a
real kernel reached only through the spellray server's proxy, saved and restored through
storage, idle kernels culled and idle workspaces stopped, and bad input refused."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.helpers import Spell, wait_for

pytestmark = pytest.mark.timeout(600)

NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1",
                       "metadata": {}, "outputs": [], "source": "print('kept')"}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def start(spell: Spell, name: str, *options: str, cwd: Path) -> str:
    """`spell jupyter NAME --no-browser`: the one-time login link it prints last."""
    done = spell("jupyter", name, "--no-browser", *options, cwd=cwd)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{spell.url}/workspaces/login?code="), done.stdout
    return link


def browser(spell: Spell, link: str, name: str) -> httpx.Client:
    """A client that opened the login link: it holds the workspace's cookie."""
    client = httpx.Client(base_url=spell.url, timeout=60, trust_env=False)
    opened = client.get(link.removeprefix(spell.url))
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == f"/workspaces/{name}/lab"
    cookie = opened.headers["set-cookie"]
    assert f"Path=/workspaces/{name};" in cookie and "HttpOnly" in cookie
    return client


def workspace(spell: Spell, name: str) -> dict:
    answer = spell.api("GET", f"/api/workspaces/{name}")
    answer.raise_for_status()
    return answer.json()


def wait_workspace(spell: Spell, name: str, *statuses: str, timeout: float = 180) -> dict:
    return wait_for(lambda: (w := workspace(spell, name))["status"] in statuses and w,
                    timeout, interval=0.5, what=f"workspace {name} to be {statuses}")


V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"  # JupyterLab's kernel wire protocol


def channels(spell: Spell, client: httpx.Client, name: str, kernel_id: str) -> tuple[str, str]:
    """The kernel websocket's URL through the proxy, and the cookie header the client has."""
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    base = spell.url.replace("http", "ws", 1)
    return f"{base}/workspaces/{name}/api/kernels/{kernel_id}/channels", cookie


def negotiated(spell: Spell, client: httpx.Client, name: str, kernel_id: str) -> str | None:
    """The subprotocol the proxy accepts when the browser asks for JupyterLab's."""
    url, cookie = channels(spell, client, name, kernel_id)

    async def run() -> str | None:
        async with connect(url, additional_headers={"Cookie": cookie},
                           subprotocols=[V1_PROTOCOL]) as ws:
            return ws.subprotocol

    return asyncio.run(run())


def execute(spell: Spell, client: httpx.Client, name: str, kernel_id: str, code: str) -> str:
    """Run ``code`` in the kernel over its websocket (the JSON wire protocol), through the
    proxy; its result."""
    url, cookie = channels(spell, client, name, kernel_id)

    async def run() -> str:
        async with connect(url, additional_headers={"Cookie": cookie}) as ws:
            msg_id = uuid.uuid4().hex
            await ws.send(json.dumps({
                "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                           "msg_type": "execute_request", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": True,
                            "user_expressions": {}, "allow_stdin": False}}))
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if message["msg_type"] == "execute_result":
                    return message["content"]["data"]["text/plain"]
                if message["msg_type"] == "error":
                    raise AssertionError(message["content"])

    return asyncio.run(run())


def kernel(client: httpx.Client, name: str) -> str:
    started = client.post(f"/workspaces/{name}/api/kernels", json={"name": "python3"})
    assert started.status_code == 201, started.text
    return started.json()["id"]


def test_workspace_runs_saves_and_restores(spell: Spell, project: Path) -> None:
    link = start(spell, "ws", cwd=project)
    client = browser(spell, link, "ws")
    # The code is the working folder; Jupyter's REST API answers through the proxy.
    listing = client.get("/workspaces/ws/api/contents").json()
    assert "train.py" in {item["name"] for item in listing["content"]}
    assert client.get("/workspaces/ws/api/kernels").json() == []
    page = client.get("/workspaces/ws/lab")
    assert page.status_code == 200 and "JupyterLab" in page.text
    # Jupyter's token is the proxy's alone: never in a page the browser gets.
    with sqlite3.connect(spell.home / "spellray.db") as state:
        token = state.execute("SELECT jupyter_token FROM workspaces WHERE name = 'ws'").fetchone()
    assert token[0] and len(token[0]) >= 32 and token[0] not in page.text
    # A real kernel, over the kernel websocket through the proxy.
    kernel_id = kernel(client, "ws")
    assert execute(spell, client, "ws", kernel_id, "21 * 2") == "42"
    # Upstream's choice of subprotocol reaches the browser (JupyterLab asks for v1).
    assert negotiated(spell, client, "ws", kernel_id) == V1_PROTOCOL
    saved = client.put("/workspaces/ws/api/contents/notes.ipynb",
                       json={"type": "notebook", "format": "json", "content": NOTEBOOK})
    assert saved.status_code in (200, 201), saved.text

    # Without the cookie nothing reaches Jupyter: HTTP is 401, a websocket is refused.
    bare = httpx.Client(base_url=spell.url, timeout=30, trust_env=False)
    for path in ("/workspaces/ws/lab", "/workspaces/ws/api/kernels",
                 "/workspaces/ws/api/contents/train.py"):
        assert bare.get(path).status_code == 401, path
    with pytest.raises(InvalidStatus):
        execute(spell, bare, "ws", kernel_id, "1")
    # The link is used up; the workspace cookie opens neither MLflow nor the API.
    assert bare.get(link.removeprefix(spell.url)).status_code == 401
    assert client.get("/mlflow/").status_code == 401
    assert client.get("/api/workspaces").status_code == 401

    # Listed by `spell workspaces`; its run is hidden from `spell ps`, shown by --all.
    run_id = workspace(spell, "ws")["run_id"]
    listed = spell("workspaces", cwd=project)
    assert listed.returncode == 0 and "ws" in listed.stdout and "running" in listed.stdout
    ids = [line.split()[0] for line in spell("ps", "-n", "0").stdout.splitlines()[1:]]
    assert str(run_id) not in ids
    all_ids = [line.split()[0] for line in spell("ps", "--all", "-n", "0").stdout.splitlines()[1:]]
    assert str(run_id) in all_ids

    # Again while it runs: it opens (a new link); with other options it is refused.
    again = start(spell, "ws", cwd=project)
    assert again != link and workspace(spell, "ws")["run_id"] == run_id
    other = spell("jupyter", "ws", "--no-browser", "-t", "CPU", "--pip", "six", cwd=project)
    assert other.returncode != 0
    line = other.stderr.strip()
    assert "\n" not in line and "is running with" in line and "environment" in line, line
    assert workspace(spell, "ws")["run_id"] == run_id

    stopped = spell("workspaces", "stop", "ws")
    assert stopped.returncode == 0, stopped.stderr
    ended = wait_workspace(spell, "ws", "stopped", "failed")
    assert ended["status"] == "stopped" and ended["status_reason"] == "stopped by user"
    folder = spell.storage / "workspaces" / "ws"
    source = json.loads((folder / "notes.ipynb").read_text())["cells"][0]["source"]
    assert "".join(source) == "print('kept')"  # nbformat may store it as a list of lines
    assert (folder / "train.py").is_file()
    assert client.get("/workspaces/ws/api/kernels").status_code == 404  # not running

    # Started again: the saved folder is back (not the code again), in a new run.
    (project / "train.py").write_text("print('changed after the workspace was made')\n")
    link = start(spell, "ws", cwd=project)
    client = browser(spell, link, "ws")
    assert workspace(spell, "ws")["run_id"] != run_id
    notebook = client.get("/workspaces/ws/api/contents/notes.ipynb").json()
    assert notebook["content"]["cells"][0]["source"] == "print('kept')"
    train = client.get("/workspaces/ws/api/contents/train.py").json()
    assert "changed after" not in train["content"]

    # A run mounts the workspace's saved files.
    done = spell("run", "-m", "workspaces/ws/notes.ipynb:nb.ipynb", "--",
                 "python", "-c", "import json; print(json.load(open('nb.ipynb'))['nbformat'])",
                 cwd=project)
    assert done.returncode == 0, done.stderr
    assert "4" in done.stdout.split()

    # Another workspace's cookie does not open this one.
    other_client = browser(spell, start(spell, "ws2", cwd=project), "ws2")
    assert other_client.get("/workspaces/ws2/api/kernels").status_code == 200
    assert other_client.get("/workspaces/ws/api/kernels").status_code == 401

    # rm: refused while running; then the record and saved files go.
    refused = spell("workspaces", "rm", "ws2", "-f")
    assert refused.returncode != 0 and "stop it first" in refused.stderr
    for name in ("ws", "ws2"):
        assert spell("workspaces", "stop", name).returncode == 0
    wait_workspace(spell, "ws2", "stopped")
    removed = spell("workspaces", "rm", "ws2", "-f")
    assert removed.returncode == 0, removed.stderr
    assert not (spell.storage / "workspaces" / "ws2").exists()
    assert spell.api("GET", "/api/workspaces/ws2").status_code == 404
    assert other_client.get("/workspaces/ws2/api/kernels").status_code == 401
    wait_workspace(spell, "ws", "stopped")


def test_idle_kernel_is_culled_then_workspace_stops_saved(spell: Spell, project: Path) -> None:
    assert spell("project", "create", "notebooks").returncode == 0
    link = start(spell, "idle", "--idle-kernel-timeout", "2", "--no-activity-timeout", "5",
                 "-p", "notebooks", cwd=project)
    client = browser(spell, link, "idle")
    kernel(client, "idle")
    # Culled after 2 idle seconds (checked every second), connected or not.
    wait_for(lambda: client.get("/workspaces/idle/api/kernels").json() == [], timeout=60,
             what="the idle kernel to be culled")
    # No kernel, no activity: Jupyter shuts itself down (on its 60 s tick) and is saved.
    ended = wait_workspace(spell, "idle", "stopped", "failed", timeout=240)
    assert ended["status"] == "stopped", ended
    assert ended["status_reason"] == "idle for 5 s"
    assert (spell.storage / "workspaces" / "idle" / "train.py").is_file()
    assert spell.run_info(ended["run_id"])["status"] == "stopped"
    assert spell.run_info(ended["run_id"])["project"] == "notebooks"  # -p NAME


def test_jupyter_that_dies_fails_with_its_log(spell: Spell, project: Path) -> None:
    start(spell, "dies", cwd=project)
    base_url = "--ServerApp.base_url=/workspaces/dies/"
    jupyter = [p for p in psutil.process_iter(["cmdline"])
               if base_url in (p.info["cmdline"] or [])]
    assert len(jupyter) == 1
    jupyter[0].send_signal(signal.SIGKILL)
    ended = wait_workspace(spell, "dies", "failed", "stopped")
    assert ended["status"] == "failed"
    reason = ended["status_reason"]
    assert reason.startswith("Jupyter exited with code 137: "), reason
    assert len(reason) > len("Jupyter exited with code 137: ")  # the log's last lines


@pytest.mark.parametrize("args, says", [
    (("jupyter", "bad/name"), "is not a workspace name"),
    (("jupyter", ".."), "is not a workspace name"),
    (("jupyter", "login"), "is not a workspace name"),
    (("jupyter", "okname", "-t", "no-such-type"), "no-such-type"),
    (("jupyter", "okname", "--notebook", "--lab"), "--notebook and --lab"),
    (("jupyter", "okname", "-m", "runs/99999:x"), "runs/99999"),
    (("jupyter", "okname", "-p", "nosuch"), "there is no project 'nosuch'"),
    (("workspaces", "stop", "nosuch"), "there is no workspace 'nosuch'"),
    (("workspaces", "rm", "nosuch", "-f"), "there is no workspace 'nosuch'"),
])
def test_bad_input_is_one_line_and_starts_nothing(spell: Spell, project: Path,
                                                 args: tuple[str, ...], says: str) -> None:
    before = spell.api("GET", "/api/runs", params={"all": True, "limit": 1}).json()["total"]
    extra = ("--no-browser",) if args[0] == "jupyter" else ()
    done = spell(*args, *extra, cwd=project)
    assert done.returncode != 0
    line = done.stderr.strip()
    assert "\n" not in line and says in line, line
    assert "Traceback" not in done.stderr
    after = spell.api("GET", "/api/runs", params={"all": True, "limit": 1}).json()["total"]
    assert after == before
    assert spell.api("GET", "/api/workspaces/okname").status_code == 404
