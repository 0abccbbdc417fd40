"""`spell keys` end to end: the real CLI as a subprocess against a real server over HTTP (no
Ray behind it), state in a real SQLite file, the server managing a real authorized_keys file
(SPELLRAY_AUTHORIZED_KEYS_FILE, as on a cluster's head) that also holds the launcher's key.

Alice is a member with a home of her own (HOME too: her ~/.ssh/id_ed25519.pub is the default
key); the admin speaks with the server's token."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spellray.server.authorized_keys import BEGIN, END
from tests.cli.test_users import Cli, _cli, add_user, one_error_line
from tests.helpers import RaylessServer, start_rayless_server

LAUNCHER = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7launcher ray-autoscaler_us-east-1"


def keygen(path: Path, comment: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                    str(path)], check=True)
    return Path(f"{path}.pub")


def fingerprint(pub: Path) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True,
                          text=True).stdout.split()[1]


def block(path: Path) -> list[str]:
    """The comments (``spellray:USER:TITLE``) of the block's lines, in order."""
    lines = path.read_text().splitlines()
    return [line.split(" spellray:", 1)[1] for line in
            lines[lines.index(BEGIN) + 1:lines.index(END)]]


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("head") / ".ssh" / "authorized_keys"
    path.parent.mkdir()
    path.write_text(f"{LAUNCHER}\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys_file: Path) -> Iterator[RaylessServer]:
    server = start_rayless_server(tmp_path_factory.mktemp("keys-server"),
                                  SPELLRAY_AUTHORIZED_KEYS_FILE=str(keys_file))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(server: RaylessServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return _cli(tmp_path_factory.mktemp("admin-cli"), server.url, server.token)


def member(admin: Cli, server: RaylessServer, home: Path, name: str) -> Cli:
    cli = _cli(home / ".spellray", server.url)
    cli.env["HOME"] = str(home)
    cli.ok("login", "--token", add_user(admin, name))
    return cli


def test_a_member_adds_generates_lists_and_removes_only_their_keys(
        server: RaylessServer, admin: Cli, keys_file: Path, tmp_path: Path) -> None:
    alice = member(admin, server, tmp_path / "alice", "alice")
    pub = keygen(tmp_path / "alice" / ".ssh" / "id_ed25519", "alice@laptop")
    out = alice.ok("keys", "add")  # ~/.ssh/id_ed25519.pub
    assert f"added key 'alice@laptop' (ssh-ed25519 {fingerprint(pub)})" in out
    assert f"installed in {keys_file}" in out
    out = alice.ok("keys", "generate", "--title", "Work laptop")
    private = alice.home / "keys" / "id_ed25519_Work-laptop"
    assert f"wrote the private key to {private} (mode 0600)" in out
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    generated = Path(f"{private}.pub")
    admin_pub = keygen(tmp_path / "admin" / "id", "root@desk")
    admin.ok("keys", "add", str(admin_pub), "-t", "desk")

    mine = alice.ok("keys", "list")
    assert fingerprint(pub) in mine and fingerprint(generated) in mine
    assert "desk" not in mine and "USER" not in mine
    everyone = admin.ok("keys", "list")  # an admin lists everyone's, with whose
    assert "USER" in everyone and fingerprint(admin_pub) in everyone
    assert {"alice", "admin"} <= set(everyone.split())
    assert block(keys_file) == ["alice:alice@laptop", "alice:Work laptop", "admin:desk"]

    # The admin's key does not exist for Alice, by title or by naming its user.
    one_error_line(alice("keys", "rm", "desk"), "you have no key titled 'desk'")
    one_error_line(alice("keys", "rm", "desk", "--user", "admin"), "admin has no key")
    token = alice.logins[server.url]["token"]
    wire = httpx.delete(f"{server.url}/api/keys/desk", params={"user": "admin"}, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})
    assert wire.status_code == 404
    assert block(keys_file)[-1] == "admin:desk"

    assert "removed alice's key 'Work laptop'" in admin.ok("keys", "rm", "Work laptop",
                                                           "--user", "alice")
    assert "removed key 'alice@laptop'" in alice.ok("keys", "rm", "--title", "alice@laptop")
    assert "TITLE" in alice.ok("keys", "list") and "alice@laptop" not in alice.ok("keys", "list")
    assert block(keys_file) == ["admin:desk"]
    assert keys_file.read_text().startswith(f"{LAUNCHER}\n")  # the launcher's key stays
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"


def test_bad_keys_and_commands_get_one_line(server: RaylessServer, admin: Cli,
                                            keys_file: Path, tmp_path: Path) -> None:
    before = keys_file.read_text()
    private = keygen(tmp_path / "id", "x").with_suffix("")
    (tmp_path / "junk.pub").write_text("ssh-ed25519 AAAAnot-a-key me\n")
    for args, words in [
        (("keys", "add", str(private)), "private key"),
        (("keys", "add", str(tmp_path / "missing.pub")), "cannot read"),
        (("keys", "add", str(tmp_path / "junk.pub")), "not an OpenSSH public key"),
        (("keys", "add", str(private) + ".pub", "--title", "no:colons"), "bad title"),
        (("keys", "rm"), "name one key"),
        (("keys", "rm", "a", "--title", "b"), "name one key"),
    ]:
        one_error_line(admin(*args), *words)
    # The server checks too: the API refuses what the CLI would have.
    wire = httpx.post(f"{server.url}/api/keys", json={"key": "ssh-ed25519 AAAA", "title": "t"},
                      headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
    assert wire.status_code == 400 and "\n" not in wire.json()["error"]["message"]
    assert keys_file.read_text() == before
    # Standard input works as a file.
    done = admin("keys", "add", "-", "-t", "piped", input=(private.parent / "id.pub").read_text())
    assert done.returncode == 0, done.stderr
    admin.ok("keys", "rm", "piped")


def test_a_restarted_server_puts_its_block_back_with_its_new_port(tmp_path: Path) -> None:
    path = tmp_path / "head" / "authorized_keys"
    server = start_rayless_server(tmp_path / "server", SPELLRAY_AUTHORIZED_KEYS_FILE=str(path))
    try:
        cli = _cli(tmp_path / "cli", server.url, server.token)
        cli.ok("keys", "add", str(keygen(tmp_path / "id", "a@b")))
    finally:
        server.stop()
    path.write_text(f"{LAUNCHER}\n")  # someone put back an older file
    server = start_rayless_server(tmp_path / "server", SPELLRAY_AUTHORIZED_KEYS_FILE=str(path))
    try:
        assert block(path) == ["admin:a@b"]
        port = server.url.rsplit(":", 1)[1]
        assert f'permitopen="127.0.0.1:{port}"' in path.read_text()
    finally:
        server.stop()
