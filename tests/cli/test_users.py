"""Users, logins and access tokens end to end: the real `spell` CLI as a subprocess against a
real server over HTTP (no Ray behind it) with its state in a real SQLite file.

The admin speaks with the server's token (SPELLRAY_TOKEN); Alice's CLI has a home of its own
and no token but what `spell login` keeps there, as on a teammate's laptop."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from spell.client import SpellClient
from tests.helpers import SPELL, RaylessServer, start_rayless_server, wait_for

PASSWORD = "tr0ub4dor&3"


@dataclass
class Cli:
    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SPELL, *args], env=self.env, capture_output=True, text=True,
                              timeout=120, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def ok(self, *args: str, input: str | None = None) -> str:
        done = self(*args, input=input)
        assert done.returncode == 0, done.stderr
        return done.stdout

    @property
    def logins(self) -> dict[str, dict[str, str]]:
        path = self.home / "logins.json"
        return json.loads(path.read_text()) if path.exists() else {}


def one_error_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaylessServer]:
    """A server of this module's own: these tests add users and log in and out."""
    server = start_rayless_server(tmp_path_factory.mktemp("users-server"))
    yield server
    server.stop()


def _cli(home: Path, url: str | None, token: str | None = None) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    env["SPELLRAY_HOME"] = str(home)
    if url is not None:
        env["SPELLRAY_SERVER_URL"] = url
    if token is not None:
        env["SPELLRAY_TOKEN"] = token
    return Cli(home=home, env=env)


@pytest.fixture(scope="module")
def admin(server: RaylessServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return _cli(tmp_path_factory.mktemp("admin-cli"), server.url, server.token)


@pytest.fixture
def laptop(server: RaylessServer, tmp_path: Path) -> Cli:
    return _cli(tmp_path / "laptop", server.url)


def add_user(admin: Cli, name: str, *flags: str, password: str | None = None) -> str:
    """`spell users add`; the one-time login token it printed."""
    out = admin.ok("users", "add", name, *flags,
                   input=f"{password}\n" if password is not None else None)
    return out.splitlines()[1].strip()


def names(server: RaylessServer, path: str, token: str | None = None) -> list[str]:
    """The names the API lists (users, or a token's access tokens), for before/after checks."""
    answer = httpx.get(f"{server.url}{path}", timeout=30,
                       headers={"Authorization": f"Bearer {token or server.token}"})
    answer.raise_for_status()
    return [item["name"] for item in answer.json()]


def status(server: RaylessServer, token: str, path: str = "/api/runs") -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"},
                     timeout=30)


def test_a_new_user_logs_in_with_the_one_time_token_and_then_a_password(
        server: RaylessServer, admin: Cli, laptop: Cli) -> None:
    one_error_line(laptop("whoami"), "no token")  # nobody is logged in on this laptop
    login_token = add_user(admin, "alice", "--password", password=PASSWORD)
    assert "alice  member  yes" in " ".join(admin.ok("users", "list").split("\n"))

    assert "logged in as alice (member)" in laptop.ok("login", "--token", login_token)
    saved = laptop.logins[server.url]
    assert saved["user"] == "alice" and saved["token"] != login_token
    assert oct((laptop.home / "logins.json").stat().st_mode & 0o777) == "0o600"
    me = laptop.ok("whoami").split()
    assert me[me.index("user") + 1] == "alice" and me[me.index("role") + 1] == "member"
    assert me[me.index("owner") + 1] == "alice" and server.url in me
    # The one-time token is spent, and was never an API token.
    one_error_line(laptop("login", "--token", login_token), "used already",
                   "spell users login-token")
    assert status(server, login_token).status_code == 401

    session = saved["token"]
    assert "logged out alice" in laptop.ok("logout")
    assert laptop.logins == {}
    revoked = status(server, session)  # revoked on the server, not only forgotten here
    assert revoked.status_code == 401 and "token revoked" in revoked.json()["error"]["message"]
    one_error_line(laptop("logout"), "not logged in")  # and nothing changes
    assert laptop.logins == {}

    assert "logged in as alice" in laptop.ok("login", "--identity", "alice",
                                               "--password", PASSWORD)
    # Without --password and no terminal: the first line of standard input.
    assert "logged in as alice" in laptop.ok("login", "--identity", "alice",
                                               input=f"{PASSWORD}\n")
    # A lost login token: an admin prints a new one (a member may not).
    one_error_line(laptop("users", "login-token", "alice"), "only an admin")
    fresh = admin.ok("users", "login-token", "alice").splitlines()[1].strip()
    assert "logged in as alice" in laptop.ok("login", "--token", fresh)
    one_error_line(admin("users", "login-token", "nobody"), "no user 'nobody'")


def test_wrong_passwords_and_unknown_users_get_one_line_and_change_nothing(
        server: RaylessServer, admin: Cli, laptop: Cli) -> None:
    add_user(admin, "carol", "--password", password=PASSWORD)
    for identity, password in [("carol", "not-her-password"), ("nobody", PASSWORD)]:
        done = laptop("login", "--identity", identity, "--password", password)
        one_error_line(done, "wrong name or password")
        assert laptop.logins == {}
    wire = httpx.post(f"{server.url}/api/login", json={"identity": "carol",
                                                       "password": "nope-nope"}, timeout=30)
    assert wire.status_code == 401
    one_error_line(laptop("login", "--token", "made-up"), "not a user's")


def test_a_member_does_member_things_but_cannot_add_users(
        server: RaylessServer, admin: Cli, laptop: Cli) -> None:
    laptop.ok("login", "--token", add_user(admin, "dave"))
    assert "ID" in laptop.ok("ps")  # a member's thing: the API answers
    assert laptop.ok("link") is not None
    one_error_line(laptop("users", "add", "mallory", "--admin"), "only an admin")
    token = laptop.logins[server.url]["token"]
    wire = httpx.post(f"{server.url}/api/users", json={"name": "mallory"}, timeout=30,
                      headers={"Authorization": f"Bearer {token}"})
    assert wire.status_code == 403
    assert "mallory" not in names(server, "/api/users")


def test_access_tokens_are_shown_once_listed_without_secrets_and_refused_once_deleted(
        server: RaylessServer, admin: Cli, laptop: Cli) -> None:
    laptop.ok("login", "--token", add_user(admin, "erin"))
    secret = laptop.ok("access-tokens", "create", "ci", "--expires", "30").splitlines()[1]
    assert status(server, secret).status_code == 200  # works like a login
    listed = laptop.ok("access-tokens", "list")
    assert "ci" in listed and secret not in listed
    assert "ago" in listed.splitlines()[1].split("ci", 1)[1]  # created; last used now set
    wire = httpx.get(f"{server.url}/api/access-tokens", timeout=30,
                     headers={"Authorization": f"Bearer {secret}"}).text
    assert secret not in wire and "token_hash" not in wire
    # Someone else's list does not show it.
    assert "ci" not in admin.ok("access-tokens", "list")
    # SpellClient(token=...) speaks with it (Spell scripts in CI).
    assert SpellClient(token=secret, base_url=server.url).runs.list() == []

    assert "deleted access token ci" in laptop.ok("access-tokens", "delete", "ci")
    refused = status(server, secret)
    assert refused.status_code == 401
    message = refused.json()["error"]["message"]
    assert "token revoked" in message and "spell access-tokens create" in message
    assert "\n" not in message
    one_error_line(_cli(laptop.home, server.url, secret)("ps"), "token revoked")
    one_error_line(laptop("access-tokens", "delete", "ci"), "no access token 'ci'")


def test_expired_tokens_are_refused_at_once(server: RaylessServer, admin: Cli,
                                            laptop: Cli) -> None:
    laptop.ok("login", "--token", add_user(admin, "frank"))
    # A tiny --expires: a second and a bit.
    short = laptop.ok("access-tokens", "create", "short", "--expires", "0.00002")
    short_secret = short.splitlines()[1]
    refused = wait_for(lambda: (r := status(server, short_secret)).status_code == 401 and r,
                       what="the short token to expire")
    assert refused.json()["error"]["message"] == (
        "token expired: run spell login or spell access-tokens create")
    # An expiry set in the past through the DB: refused at the next request.
    secret = laptop.ok("access-tokens", "create", "long", "--expires", "365").splitlines()[1]
    assert status(server, secret).status_code == 200
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(server.home / "spellray.db") as connection:
        connection.execute("UPDATE tokens SET expires_at = ? WHERE name = 'long'", (past,))
    one_error_line(_cli(laptop.home, server.url, secret)("ps"), "token expired")
    assert "(expired)" in laptop.ok("access-tokens", "list")


@pytest.mark.parametrize("days", ["0", "-3", "abc", "nan", "inf", "99999"])
def test_bad_expires_is_one_line_and_makes_nothing(server: RaylessServer, admin: Cli,
                                                   days: str) -> None:
    before = names(server, "/api/access-tokens")
    one_error_line(admin("access-tokens", "create", "bad", "--expires", days), "--expires")
    assert names(server, "/api/access-tokens") == before


def test_bad_user_inputs_are_one_line_and_change_nothing(server: RaylessServer, admin: Cli,
                                                         laptop: Cli) -> None:
    add_user(admin, "grace")
    before = names(server, "/api/users")
    one_error_line(admin("users", "add", "grace"), "already")
    for done in (admin("users", "add", "Not A Name"),
                 admin("users", "add", "heidi", "--password", input="short\n")):
        assert "unexpectedly" not in one_error_line(done, "use")  # ours, with what to do
    one_error_line(admin("users", "add", "heidi", "--password", input="short\n"), "too short")
    one_error_line(admin("users", "add", "ivan", "--password", input="\n"), "no password")
    assert names(server, "/api/users") == before
    admin.ok("access-tokens", "create", "twice")
    one_error_line(admin("access-tokens", "create", "twice"), "already")
    assert names(server, "/api/access-tokens").count("twice") == 1
    one_error_line(laptop("login"), "--token")  # no terminal to ask on
    one_error_line(laptop("login", "--server", "not-a-url", "--token", "x"), "bad --server")
    assert laptop.logins == {}


def test_login_with_server_points_the_cli_at_it(server: RaylessServer, admin: Cli,
                                                tmp_path: Path) -> None:
    laptop = _cli(tmp_path / "elsewhere", None)  # no SPELLRAY_SERVER_URL at all
    out = laptop.ok("login", "--server", f"{server.url}/", "--token", add_user(admin, "judy"))
    assert f"at {server.url}" in out
    clusters = json.loads((laptop.home / "clusters.json").read_text())
    assert clusters["clusters"][clusters["current"]]["server_url"] == server.url
    assert clusters["clusters"][clusters["current"]]["token"] == ""  # the token is a login's
    assert "judy" in laptop.ok("whoami")
    laptop.ok("logout")
    one_error_line(laptop("whoami"), "no token")

