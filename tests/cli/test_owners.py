"""Owners and teams end to end: the real `spell` CLI as a subprocess against a real server
over HTTP (no Ray behind it), its state in a real SQLite file.

alice and carol are in team vision, bob in team speech, each on a laptop of their own. What
needs Ray to be made (runs, searches, workflows, model servers, workspaces) is written into
the server's DB as the server would; uploads, models and links are made with the CLI. Each
member sees their own and their teams' things, nothing of the others' (404, as if it did
not exist); the admin sees all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from spell.client import SpellClient
from spellray.errors import Forbidden
from spellray.server import db
from tests.cli.test_users import Cli, _cli, add_user, one_error_line
from tests.helpers import RaylessServer, start_rayless_server

SEARCH_SPEC = {"kind": "grid", "params": [], "run": {"command": "true"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaylessServer]:
    server = start_rayless_server(tmp_path_factory.mktemp("owners-server"))
    yield server
    server.stop()


@dataclass
class Team:
    admin: Cli
    alice: Cli
    bob: Cli
    carol: Cli
    ids: dict[str, dict[str, int | str]]  # owner -> the things of theirs made here


def _things(server: RaylessServer, owner: str) -> dict[str, int | str]:
    """A run, a search, a workflow (manager and child), a model server and a workspace of
    ``owner``, written as the server writes them; a run's log, so `spell logs` has one."""
    engine = db.make_engine(f"sqlite:///{server.home / 'spellray.db'}")
    with db.make_session_factory(engine)() as session:
        def run(kind: str = "run") -> db.Run:
            # spec local: the reconciler leaves a run with no Ray job alone.
            row = db.Run(command=f"echo {owner}", machine_type="CPU", status="running",
                         kind=kind, spec={"local": True}, owner=owner)
            session.add(row)
            session.flush()
            return row

        own, manager, workspace_run = run(), run("workflow"), run("workspace")
        manager.workflow_id = manager.id
        child = run()
        child.workflow_id = manager.id
        search = db.HyperSearch(kind="grid", status="running", spec=SEARCH_SPEC,
                                ray_submission_id=f"owners-{owner}", owner=owner)
        session.add(search)
        # One model for all (made first, by alice): a server's listing reads its model.
        session.add(db.ModelServer(name=f"{owner}-srv", model_name="alice-model",
                                   model_version="v1", options={}, status="stopped",
                                   token="t", token_hash="h", owner=owner))
        session.add(db.Workspace(name=f"{owner}-ws", run_id=workspace_run.id, options={},
                                 owner=owner))
        session.flush()
        ids: dict[str, int | str] = {"run": own.id, "workflow": manager.id, "child": child.id,
                                     "search": search.id, "server": f"{owner}-srv",
                                     "workspace": f"{owner}-ws"}
        session.commit()
    engine.dispose()
    log = server.home / "storage" / "runs" / str(ids["run"]) / ".spell" / "log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"hello from {owner}\n")
    return ids


@pytest.fixture(scope="module")
def team(server: RaylessServer, tmp_path_factory: pytest.TempPathFactory) -> Team:
    admin = _cli(tmp_path_factory.mktemp("admin"), server.url, server.token)
    laptops = {}
    for name in ("alice", "bob", "carol"):
        laptops[name] = _cli(tmp_path_factory.mktemp(name), server.url)
        laptops[name].ok("login", "--token", add_user(admin, name))
    admin.ok("teams", "create", "vision")
    admin.ok("teams", "create", "speech")
    assert "alice is in team vision" in admin.ok("teams", "add", "vision", "alice")
    admin.ok("teams", "add", "vision", "carol")
    admin.ok("teams", "add", "speech", "bob")
    alice, bob = laptops["alice"], laptops["bob"]
    data = tmp_path_factory.mktemp("data")
    (data / "weights.txt").write_text("42")
    for cli, owner in ((alice, "alice"), (bob, "bob")):
        cli.ok("upload", str(data), "-n", f"{owner}-data")
        cli.ok("model", "create", f"{owner}-model", f"uploads/{owner}-data")
        cli.ok("link", f"{owner}-link", f"uploads/{owner}-data")
    assert "active owner: vision" in alice.ok("owner", "vision")
    alice.ok("upload", str(data), "-n", "vision-data")
    alice.ok("model", "create", "vision-model", "uploads/vision-data")
    alice.ok("link", "vision-link", "uploads/vision-data")
    alice.ok("owner", "alice")  # back to her own
    ids = {owner: _things(server, owner) for owner in ("alice", "bob", "vision", "admin")}
    return Team(admin=admin, alice=alice, bob=bob, carol=laptops["carol"], ids=ids)


def _api(server: RaylessServer, cli: Cli, path: str) -> httpx.Response:
    token = cli.env.get("SPELLRAY_TOKEN") or cli.logins[server.url]["token"]
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"},
                     timeout=30)


def _seen(server: RaylessServer, cli: Cli) -> dict[str, set[str]]:
    """What each list shows ``cli``'s user, by the owner the name or number is of."""
    def numbers(path: str, key: str, field: str = "id") -> set[int | str]:
        body = _api(server, cli, path).json()
        return {item[field] for item in (body[key] if key else body)}

    return {
        "runs": numbers("/api/runs?limit=0&all=true", "runs"),
        "searches": numbers("/api/hyper", "searches"),
        "workflows": numbers("/api/workflows?limit=0", "workflows"),
        "servers": numbers("/api/model-servers", "", "name"),
        "workspaces": numbers("/api/workspaces", "workspaces", "name"),
        "models": numbers("/api/models", "", "name"),
        "links": numbers("/api/links", "", "alias"),
        "uploads": {e["name"] for e in _api(server, cli, "/api/resources?path=uploads")
                    .json()["entries"]},
    }


def _of(team: Team, *owners: str) -> dict[str, set[int | str]]:
    """What the lists should show of ``owners``' things."""
    expected: dict[str, set[int | str]] = {key: set() for key in (
        "runs", "searches", "workflows", "servers", "workspaces", "models", "links", "uploads")}
    for owner in owners:
        ids = team.ids[owner]
        expected["runs"] |= {ids["run"], ids["workflow"], ids["child"]}
        expected["runs"].add(int(ids["workflow"]) + 1)  # the workspace's run (made next)
        expected["searches"].add(ids["search"])
        expected["workflows"].add(ids["workflow"])
        expected["servers"].add(ids["server"])
        expected["workspaces"].add(ids["workspace"])
        if owner != "admin":
            expected["models"].add(f"{owner}-model")
            expected["links"].add(f"{owner}-link")
            expected["uploads"].add(f"{owner}-data")
    return expected


def test_each_member_sees_only_their_own_and_their_teams_things(
        server: RaylessServer, team: Team) -> None:
    assert _seen(server, team.alice) == _of(team, "alice", "vision")
    assert _seen(server, team.carol) == _of(team, "vision")
    assert _seen(server, team.bob) == _of(team, "bob")
    assert _seen(server, team.admin) == _of(team, "alice", "bob", "vision", "admin")
    # The CLI's own views: ls and ps.
    assert "alice-data" not in team.bob.ok("ls", "uploads")
    assert "vision-data" in team.carol.ok("ls", "uploads")
    bobs_ps = team.bob.ok("ps", "-n", "0")
    assert "echo bob" in bobs_ps and "echo alice" not in bobs_ps and "OWNER" not in bobs_ps
    everyone = team.admin.ok("ps", "-n", "0")  # more than one owner: the OWNER column
    assert "OWNER" in everyone and "vision" in everyone and "echo bob" in everyone


def test_another_owners_things_are_not_found(server: RaylessServer, team: Team) -> None:
    alices, visions = team.ids["alice"], team.ids["vision"]
    run = str(alices["run"])
    for args in (("info", run), ("logs", run), ("stop", run), ("kill", run),
                 ("ls", f"runs/{run}"), ("cp", "alice-link", "."),
                 ("ls", "uploads/alice-data"), ("cp", "uploads/vision-data", "."),
                 ("workflow", "describe", str(alices["workflow"])),
                 ("hyper", "describe", str(visions["search"])),
                 ("model", "describe", "alice-model"), ("link", "vision-link"),
                 ("rm", "uploads/alice-data"), ("unlink", "alice-link")):
        one_error_line(team.bob(*args), "there is no")
    assert "hello from alice" in team.alice.ok("logs", run)  # still there for her
    for path in (f"/api/runs/{run}", f"/api/workflows/{alices['workflow']}",
                 f"/api/hyper/{alices['search']}", "/api/model-servers/alice-srv",
                 "/api/workspaces/alice-ws", "/api/models/alice-model/v1",
                 "/api/links/alice-link"):
        assert _api(server, team.bob, path).status_code == 404, path
        assert _api(server, team.alice, path).status_code == 200, path
        assert _api(server, team.admin, path).status_code == 200, path


def test_a_teammate_acts_on_the_teams_things(server: RaylessServer, team: Team) -> None:
    run = str(team.ids["vision"]["run"])
    assert "hello from vision" in team.carol.ok("logs", run)
    team.carol.ok("stop", run)  # a local run: stopped at once
    assert "stopped" in team.alice.ok("info", run)


def test_the_active_owner(server: RaylessServer, team: Team) -> None:
    listed = team.alice.ok("owner").splitlines()
    assert listed == ["* alice (user)", "  vision (team)"]
    one_error_line(team.alice("owner", "speech"), "alice may not use the owner 'speech'")
    one_error_line(team.alice("owner", "bob"), "may not use the owner 'bob'")
    assert team.alice.ok("owner").splitlines()[0] == "* alice (user)"  # nothing changed
    team.alice.ok("owner", "vision")
    me = team.alice.ok("whoami").split()
    assert me[me.index("owner") + 1] == "vision" and me[me.index("user") + 1] == "alice"
    assert team.alice.ok("owner").splitlines() == ["  alice (user)", "* vision (team)"]
    team.alice.ok("owner", "alice")
    one_error_line(team.admin("owner", "nobody"), "no user or team 'nobody'")


def test_bad_team_input_gets_one_line(server: RaylessServer, team: Team) -> None:
    one_error_line(team.admin("teams", "create", "alice"), "the name alice is taken")
    one_error_line(team.admin("teams", "create", "vision"), "the name vision is taken")
    one_error_line(team.admin("teams", "create", "Bad Name"), "bad user name")
    one_error_line(team.admin("teams", "add", "nothing", "alice"), "no team 'nothing'")
    one_error_line(team.admin("teams", "add", "vision", "nobody"), "no user 'nobody'")
    one_error_line(team.admin("users", "add", "speech"), "there is a team speech")
    one_error_line(team.alice("teams", "create", "mine"), "only an admin")
    one_error_line(team.alice("teams", "add", "vision", "bob"), "only an admin")
    assert "speech" not in team.alice.ok("teams", "list")  # a member: their own teams
    assert "alice, carol" in team.alice.ok("teams", "list")
    assert "speech" in team.admin.ok("teams", "list")


@contextmanager
def _browser(server: RaylessServer, cli: Cli) -> Iterator[httpx.Client]:
    """A browser logged in with ``cli``'s user's one-time console link (as `spell ui`)."""
    token = cli.env.get("SPELLRAY_TOKEN") or cli.logins[server.url]["token"]
    login = httpx.post(f"{server.url}/api/console/login", timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    assert login.status_code == 200, login.text
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        assert browser.get(login.json()["login_path"]).status_code == 303  # sets the cookies
        yield browser


def test_the_console_shows_a_member_only_their_owners_things(server: RaylessServer,
                                                             team: Team) -> None:
    alices, bobs, visions = (team.ids[o] for o in ("alice", "bob", "vision"))
    with _browser(server, team.alice) as browser:
        page = browser.get("/").text
        assert f'href="/runs/{alices["run"]}"' in page and f'href="/runs/{visions["run"]}"' in page
        assert f'href="/runs/{bobs["run"]}"' not in page
        assert "<th>Owner</th>" in page  # alice's and vision's: more than one owner
        assert browser.get(f"/runs/{alices['run']}").status_code == 200
        for path in (f"/runs/{bobs['run']}", f"/runs/{bobs['run']}/log.txt",
                     f"/searches/{bobs['search']}", f"/workflows/{bobs['workflow']}",
                     "/model-servers/bob-srv"):
            assert browser.get(path).status_code == 404, path
        assert "bob-srv" not in browser.get("/model-servers").text
        assert "bob-model" not in browser.get("/models").text
        # MLflow cannot filter by owner, Ray's dashboard is an admin's: not for a member.
        for path in ("/mlflow/", "/ray/"):
            refused = browser.get(path)
            assert refused.status_code == 403, (path, refused.text)
            assert "a member's token may not open" in refused.json()["error"]["message"]
    with _browser(server, team.bob) as browser:
        page = browser.get("/").text
        assert f'href="/runs/{alices["run"]}"' not in page and "<th>Owner</th>" not in page
    with _browser(server, team.admin) as browser:
        assert f'href="/runs/{bobs["run"]}"' in browser.get("/").text
        assert browser.get(f"/runs/{bobs['run']}").status_code == 200


def test_spells_client_makes_things_for_its_owner(server: RaylessServer, team: Team) -> None:
    """Spell's ``SpellClient(owner=...)`` sends the owner the way the CLI does."""
    token = team.alice.logins[server.url]["token"]
    client = SpellClient(token=token, owner="vision", base_url=server.url)
    assert client.owner == "vision"
    assert client.models.new("spell-made", "uploads/vision-data").owner == "vision"
    assert "spell-made" in {m["name"] for m in _api(server, team.carol, "/api/models").json()}
    with pytest.raises(Forbidden, match="may not use the owner 'speech'"):
        SpellClient(token=token, owner="speech", base_url=server.url).models.list()


# Last: carol logs out.
def test_a_login_starts_as_its_own_user(server: RaylessServer, team: Team,
                                        tmp_path: Path) -> None:
    team.carol.ok("owner", "vision")
    assert team.carol.logins["owners"] == {server.url: "vision"}
    team.carol.ok("logout")
    assert "owners" not in team.carol.logins or not team.carol.logins["owners"]
