"""Every route against every kind of token, over HTTP on a real server (issue 20, "Scoped
tokens").

The routes are enumerated from the app itself (``app.routes``, every API route and the docs),
plus one request into each browser path that takes bearer tokens (``BrowserGate``: the
console, MLflow, TensorBoard, Jupyter, Ray's dashboard). Each is sent with each kind of token
(admin, a member's session and access token, a one-time login token, a run's token against
its own run and another, a workflow manager's against its workflow's runs and others, a
search's against its search and another, an expired, a revoked and none, and a member
against another member's things: every route whose path names one answers 404), path
parameters filled with real ids, a JSON body ``{}`` where the method takes one.

The expectation is the hand-written table below (``RUN_MAY`` etc.): the few routes a run's,
a workflow manager's and a search driver's token may use. Everything else is refused to them,
so **a new route nobody lists here is closed to those tokens by this test**: it fails until
the route is either refused to them by auth (it is, unless the route declares a scope with
``@scoped``) or listed here on purpose. Refused means auth's answer (the one-line
``{"error": ...}`` body): 401 for no, expired, revoked and login tokens; 404 for what the token
may not see; 403 for what it may see but not do. Auth runs before FastAPI validates a body
(``authorize`` is the app's dependency, solved before the body's fields), so a refused
request with the minimal body gets auth's answer, never a 422: a 422 (or any other answer)
where a refusal is expected counts as wrong. "Let in" is anything but auth's refusal: with
no Ray behind the server, a 503 or a 422 from the route itself counts as let in.

Each kind gets its own runs, workflow and search, and the routes that end things (kill,
stop, delete, logout) go last for each kind, so one check's side effects (a killed run
revokes its token) never decide another's.

Prints the figure last: ``routes, kinds, checks, wrong``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import Mount

from spellray.server import db
from spellray.server.app import create_app
from spellray.server.auth import issue_run_token, issue_search_token
from spellray.server.browser_sessions import BrowserGate
from tests.helpers import RaylessServer, start_rayless_server

IN = "in"  # let in: anything but auth's refusal

# --- The hand-written table: what each token of no user may use -----------------------------
# Any valid token, or none at all.
PUBLIC = {("POST", "/api/login"), ("GET", "/openapi.json"), ("GET", "/docs"),
          ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}
ANY_TOKEN = {("GET", "/api/info"), ("GET", "/api/whoami"),
             # MLflow cannot filter by run: any valid token is let in (runs log there),
             # but a member's (it shows every owner's runs: ADMIN_ONLY below).
             ("GET", "/mlflow/")}
# A run's token: report its own run, send its own metrics (the run's own only: 403 for
# another run it can see).
RUN_OWN = {("POST", "/api/runs/{run_id}/status"), ("POST", "/api/runs/{run_id}/tracking"),
           ("POST", "/api/runs/{run_id}/metrics"),
           ("POST", "/api/runs/{run_id}/workspace-address")}
# ... read the runs it can see (its own; a manager's: its workflow's) and resources.
RUN_READ = {("GET", "/api/runs"), ("GET", "/api/runs/{run_id}"),
            ("GET", "/api/runs/{run_id}/logs"), ("GET", "/api/runs/{run_id}/environment-log"),
            ("GET", "/api/runs/{run_id}/outputs"), ("GET", "/api/runs/{run_id}/stats"),
            ("GET", "/api/runs/{run_id}/metrics"), ("GET", "/api/runs/{run_id}/metrics/{name}"),
            ("GET", "/api/workflows/{workflow_id}")}
RESOURCES_READ = {("GET", "/api/resources"), ("GET", "/api/resources/tree"),
                  ("GET", "/api/resources/content"), ("GET", "/api/links"),
                  ("GET", "/api/links/{alias}"), ("GET", "/api/models"),
                  ("GET", "/api/models/{name}"), ("GET", "/api/models/{name}/{version}")}
RUN_MAY = RUN_OWN | RUN_READ | RESOURCES_READ
# A workflow manager's: a run's, plus start, read and control its workflow's runs.
WORKFLOW_MAY = RUN_MAY | {
    ("POST", "/api/runs"), ("HEAD", "/api/code/{sha256}"), ("PUT", "/api/code/{sha256}"),
    ("POST", "/api/runs/{run_id}/kill"), ("POST", "/api/runs/{run_id}/stop"),
    ("PUT", "/api/runs/{run_id}/labels/{label}"), ("DELETE", "/api/runs/{run_id}/labels/{label}"),
    ("POST", "/api/workflows/{workflow_id}/stop"), ("POST", "/api/workflows/{workflow_id}/kill")}
# A search driver's: read its search, start its trials, report its status.
SEARCH_MAY = {("GET", "/api/hyper/{search_id}"), ("GET", "/api/hyper/{search_id}/spec"),
              ("POST", "/api/hyper/{search_id}/trials"), ("POST", "/api/hyper/{search_id}/status")}
# A member's tokens: everything but managing users and teams, MLflow's UI (it cannot filter
# by owner), and Ray's dashboard (it shows every
# job's logs and environment, whoever's run it is).
ADMIN_ONLY = {("POST", "/api/users"), ("POST", "/api/users/{name}/login-token"),
              ("POST", "/api/teams"), ("POST", "/api/teams/{name}/members"), ("GET", "/ray/"),
              ("GET", "/mlflow/"), ("POST", "/api/ui/login")}

DEAD = ("none", "expired", "revoked", "login")
USERS = ("member-access", "member-session", "admin")
# A member (mallory) against another member's (alice's) things: every route whose path names
# one of them answers 404, as if it did not exist; the rest as for any member.
OTHER_OWNER = "member→other-owner"
OWNED_PARAMS = ("{run_id}", "{workflow_id}", "{search_id}")
OWNED_PREFIXES = ("/api/links/{alias}", "/api/models/{name}", "/api/model-servers/{name}",
                  "/api/workspaces/{name}")
# Kind -> whose world the path's ids come from: (run, workflow, search) seen, or not.
SCOPED = {
    # kind: (may, run_id is its own/its workflow's, workflow_id is its own, search_id its own)
    "run": (RUN_MAY, True, False, False),
    "run→other-run": (RUN_MAY, False, False, False),
    "workflow": (WORKFLOW_MAY, True, True, False),
    "workflow→other": (WORKFLOW_MAY, False, False, False),
    "search": (SEARCH_MAY, False, False, True),
    "search→other": (SEARCH_MAY, False, False, False),
}
KINDS = (*DEAD, *SCOPED, *USERS, OTHER_OWNER)

# Auth's refusals (server/auth.py, browser_sessions.py): told apart from a route's own 404.
AUTH_MESSAGES = re.compile(
    r"^(there is no run \d+; spell ps lists the runs"
    r"|there is no workflow \d+; spell workflow list lists them"
    r"|there is no search \d+; spell hyper list lists them"
    r"|this \w+ token may not .*"
    r"|only an admin may do this .*"
    r"|a [\w']+ token may not open .*)$")  # a browser path's gate


def expected(kind: str, route: tuple[str, str], gate: bool) -> str | int:
    """What ``kind`` should get from ``route``: IN or the refusal's status."""
    if route in PUBLIC:
        return IN
    if kind in DEAD:
        return 401
    path = route[1]
    if kind == OTHER_OWNER and not gate and (any(p in path for p in OWNED_PARAMS)
                                             or path.startswith(OWNED_PREFIXES)):
        return 404
    if kind in (*USERS, OTHER_OWNER):
        return 403 if kind != "admin" and route in ADMIN_ONLY else IN
    if route in ANY_TOKEN:
        return IN
    if gate:
        return 403  # browser paths let in users' tokens only (MLflow: any, above)
    may, sees_run, sees_workflow, sees_search = SCOPED[kind]
    # Auth's order: the run (404), the workflow (404), the search (404), then the scope (403).
    if "{run_id}" in path and not sees_run:
        return 404
    if "{workflow_id}" in path and not sees_workflow:
        return 404
    if "{search_id}" in path and not sees_search:
        return 404
    if route in RUN_OWN and kind == "workflow":
        return 403  # the workflow's run is not the manager's own: it reports for itself
    return IN if route in may else 403


# --- The server, its users and one world of runs per kind ----------------------------------


@dataclass
class World:
    """The ids one kind's requests are filled with, and its token."""

    token: str | None
    ids: dict[str, Any] = field(default_factory=dict)


def _run(session: Session, workflow_id: int | None = None, kind: str = "run",
         owner: str | None = None) -> db.Run:
    # spec local: the reconciler leaves a run with no Ray job alone (a --local manager's).
    run = db.Run(command="true", machine_type="CPU", status="running", kind=kind,
                 spec={"local": True}, owner=owner)
    session.add(run)
    session.flush()
    run.workflow_id = run.id if kind == "workflow" else workflow_id
    return run


SEARCH_SPEC = {"kind": "grid", "params": [], "run": {"command": "true"}}


def _search(session: Session, owner: str | None = None) -> db.HyperSearch:
    # A submission id: the reconciler asks Ray about it, finds Ray gone and changes nothing.
    search = db.HyperSearch(kind="grid", status="running", spec=SEARCH_SPEC,
                            ray_submission_id="scopes-test-search", owner=owner)
    session.add(search)
    session.flush()
    return search


def _world(session: Session, kind: str, token: str | None = None) -> World:
    """Runs (a standalone one, another, a workflow with a child, another workflow) and two
    searches for one kind; the scoped kinds' token is tied to them as the kind says."""
    # The users' worlds are alice's (the member's tokens are hers; the admin sees all).
    owner = "alice" if kind in (*USERS, OTHER_OWNER) else None
    own, other = _run(session, owner=owner), _run(session, owner=owner)
    manager = _run(session, kind="workflow", owner=owner)
    stranger = _run(session, kind="workflow", owner=owner)
    child = _run(session, workflow_id=manager.id, owner=owner)
    search, other_search = _search(session, owner), _search(session, owner)
    ids = {"run_id": own.id, "workflow_id": manager.id, "search_id": search.id}
    if kind == "run":
        token = issue_run_token(session, own.id)
    elif kind == "run→other-run":
        token = issue_run_token(session, own.id)
        ids["run_id"] = other.id
    elif kind == "workflow":
        token = issue_run_token(session, manager.id, manager.id)
        ids["run_id"] = child.id
    elif kind == "workflow→other":
        token = issue_run_token(session, manager.id, manager.id)
        ids.update(run_id=other.id, workflow_id=stranger.id)
    elif kind == "search":
        token = issue_search_token(session, search.id)
    elif kind == "search→other":
        token = issue_search_token(session, search.id)
        ids["search_id"] = other_search.id
    # Names the routes look up: none exists, so a route that lets the request in answers
    # its own 404 (told apart from auth's by its message).
    ids.update(name="nothing", alias="nothing", version="1", label="scopes", sha256=CODE_SHA,
               title="nothing")
    if kind == OTHER_OWNER:  # alice's named things: a link, model, server and workspace
        name = f"other-{own.id}"
        session.add_all([
            db.Link(alias=name, path="public", owner=owner),
            db.Model(name=name, version="v1", resource="public", owner=owner),
            db.ModelServer(name=name, model_name=name, model_version="v1", options={},
                           status="stopped", token="t", token_hash="h", owner=owner),
            db.Workspace(name=name, run_id=own.id, options={}, owner=owner)])
        ids.update(name=name, alias=name, version="v1")
    session.commit()
    return World(token=token, ids=ids)


# The code the runs' routes name: uploaded first, so HEAD /api/code/{sha256} finds it (a HEAD
# has no body to tell a route's own 404 from auth's); its bytes are the body every PUT sends.
CODE_SHA = hashlib.sha256(b"{}").hexdigest()


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture(scope="module")
def scopes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaylessServer]:
    server = start_rayless_server(tmp_path_factory.mktemp("scopes"))
    yield server
    server.stop()


class Worlds:
    """Makes a kind's world in the server's SQLite file; the users' tokens are made the way
    people make them (over HTTP)."""

    def __init__(self, server: RaylessServer) -> None:
        url, admin = server.url, server.token

        def call(method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
            return _ok(httpx.request(method, url + path, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}, **kwargs))

        first = call("POST", "/api/users", admin, json={"name": "alice"})["login_token"]
        session = _ok(httpx.post(f"{url}/api/login", json={"token": first}, timeout=30))["token"]
        access = call("POST", "/api/access-tokens", session, json={"name": "ci"})["token"]
        expired = call("POST", "/api/access-tokens", session, json={"name": "old"})["token"]
        revoked = call("POST", "/api/access-tokens", session, json={"name": "gone"})["token"]
        assert httpx.delete(f"{url}/api/access-tokens/gone", timeout=30,
                            headers={"Authorization": f"Bearer {session}"}).status_code == 204
        login = call("POST", "/api/users/alice/login-token", admin)["login_token"]
        first = call("POST", "/api/users", admin, json={"name": "mallory"})["login_token"]
        mallory = _ok(httpx.post(f"{url}/api/login", json={"token": first}, timeout=30))["token"]
        assert httpx.put(f"{url}/api/code/{CODE_SHA}", content=b"{}", timeout=30,
                         headers={"Authorization": f"Bearer {admin}"}).status_code == 201
        self.tokens = {"none": None, "login": login, "expired": expired, "revoked": revoked,
                       "member-access": access, "member-session": session, "admin": admin,
                       OTHER_OWNER: mallory}
        self.engine = db.make_engine(f"sqlite:///{Path(server.home) / 'spellray.db'}")
        self.sessions = db.make_session_factory(self.engine)
        with self.sessions() as s:
            # Expired a second ago: no waiting for a clock in the test.
            s.scalar(select(db.Token).where(db.Token.name == "old")).expires_at = \
                db.utcnow() - timedelta(seconds=1)
            s.commit()
        self.kept = {kind: self.fresh(kind) for kind in KINDS}

    def fresh(self, kind: str) -> World:
        with self.sessions() as s:
            return _world(s, kind, self.tokens.get(kind))


@pytest.fixture(scope="module")
def scopes_worlds(scopes_server: RaylessServer) -> Iterator[Worlds]:
    worlds = Worlds(scopes_server)
    yield worlds
    worlds.engine.dispose()


# --- The routes ----------------------------------------------------------------------------


def api_routes() -> list[tuple[str, str]]:
    """Every (method, path) the app routes, its routers' included (Starlette adds HEAD to a
    GET by itself: the GET is checked)."""
    app = create_app("http://127.0.0.1:1")
    routes: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            continue  # /static: our CSS and scripts, public on purpose, outside the gate
        methods = set(context.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        path = context.path.replace("{name:path}", "{name}")
        routes.update((method, path) for method in methods)
    return sorted(routes)


def gate_routes() -> list[tuple[str, str]]:
    """One request into each browser path the gate guards (the console's pages are at /)."""
    app = create_app("http://127.0.0.1:1")
    gate = next(m for m in app.user_middleware if m.cls is BrowserGate)
    return [("GET", f"{p.prefix}/{'nb/' if p.scoped else ''}") for p in gate.kwargs["paths"]]


def ends_things(route: tuple[str, str]) -> bool:
    """Kill, stop, archive, delete: checked in a fresh world (a killed manager's token is
    revoked, a deleted workflow is gone), so one check never decides the next."""
    method, path = route
    return method == "DELETE" or path.rsplit("/", 1)[-1] in ("kill", "stop", "archive")


def refused_by_auth(response: httpx.Response) -> bool:
    """Auth's own refusal: a 401, or a 403/404 saying what auth says (a route's own 404 for
    a name that does not exist says something else)."""
    if response.status_code == 401:
        return True
    if response.status_code not in (403, 404):
        return False
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(AUTH_MESSAGES.match(message))


def one_line_error(response: httpx.Response) -> bool:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(error.get("code")) and "\n" not in error.get("message", "\n")


def test_a_refusal_comes_before_the_body_is_validated(scopes_server: RaylessServer,
                                                      scopes_worlds: Worlds) -> None:
    """Auth answers before the body is looked at, so a caller with no right to a route learns
    nothing about what it takes. A body that is no UserRequest, or no JSON at all (FastAPI
    parses JSON before it solves the app's dependency: the error handler checks the token
    first then), gets auth's 401 or 403; the admin gets the body's 400."""
    run = scopes_worlds.fresh("run").token
    for body in (b'{"name": 7, "extra": []}', b"{not json"):
        for token, status in ((run, 403), (None, 401), (scopes_server.token, 400)):
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            response = httpx.post(f"{scopes_server.url}/api/users", content=body,
                                  headers=headers, timeout=30)
            assert response.status_code == status, (body, status, response.text)
            assert one_line_error(response), response.text
            assert (status == 400) != refused_by_auth(response), response.text


def test_the_lists_a_scoped_token_may_read_show_only_what_it_sees(
        scopes_server: RaylessServer, scopes_worlds: Worlds) -> None:
    """GET /api/runs is open to run tokens (the table) because it is filtered: a run's token
    lists its own run, a manager's its workflow's runs, never the other runs beside them."""
    def listed(world: World) -> set[int]:
        response = httpx.get(f"{scopes_server.url}/api/runs", params={"limit": 1000},
                             headers={"Authorization": f"Bearer {world.token}"}, timeout=30)
        return {run["id"] for run in _ok(response)["runs"]}

    run, workflow = scopes_worlds.fresh("run"), scopes_worlds.fresh("workflow")
    assert listed(run) == {run.ids["run_id"]}
    assert listed(workflow) == {workflow.ids["workflow_id"], workflow.ids["run_id"]}
    everything = listed(World(token=scopes_server.token))
    assert len(everything) > 3 * len(KINDS)  # the others are there, for a user's token


def test_every_route_against_every_kind_of_token(scopes_server: RaylessServer,
                                                 scopes_worlds: Worlds) -> None:
    api, gates = api_routes(), gate_routes()
    assert ("POST", "/api/runs/{run_id}/status") in api and len(api) > 60  # found them all
    assert {route for route in ANY_TOKEN | PUBLIC if route not in gates} <= set(api)
    stale = (RUN_MAY | WORKFLOW_MAY | SEARCH_MAY | ADMIN_ONLY) - {*api, *gates}
    assert not stale, f"the table lists routes the app no longer has: {sorted(stale)}"
    checks, wrong = 0, []
    # A connection per request: a route that fails (a 500) may close its connection.
    with httpx.Client(base_url=scopes_server.url, timeout=120,
                      limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for kind in KINDS:
            # Logging out revokes a user's token: last.
            for route in sorted([*api, *gates], key=lambda r: r[1] == "/api/logout"):
                method, template = route
                world = scopes_worlds.fresh(kind) if ends_things(route) \
                    else scopes_worlds.kept[kind]
                headers = {"Authorization": f"Bearer {world.token}"} if world.token else {}
                path = template.format(**world.ids)
                body = method in ("POST", "PUT", "PATCH")  # the JSON {}: the minimal body
                response = client.request(
                    method, path, content=b"{}" if body else None,
                    headers={**headers, "Content-Type": "application/json"} if body else headers)
                want = expected(kind, route, route in gates)
                checks += 1
                if method == "HEAD":  # no body to read: the status alone
                    ok = response.status_code not in (401, 403, 404) if want == IN \
                        else response.status_code == want
                elif want == IN:
                    ok = not refused_by_auth(response)
                elif kind == OTHER_OWNER:  # the thing exists: any 404 is a refusal
                    ok = response.status_code == want and one_line_error(response)
                else:
                    # The refusal is auth's: its status, its one line, never a 422 from
                    # the body.
                    ok = response.status_code == want and one_line_error(response) \
                        and refused_by_auth(response)
                if not ok:
                    wrong.append(f"{kind:16} {method:6} {path}: wanted {want}, got "
                                 f"{response.status_code} {response.text[:160]}")
    routes = len(api) + len(gates)
    print("\n".join(wrong))
    print(f"routes, kinds, checks, wrong: {routes}, {len(KINDS)}, {checks}, {len(wrong)}")
    assert not wrong, f"{len(wrong)} of {checks} checks went wrong:\n" + "\n".join(wrong)
