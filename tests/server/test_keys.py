"""The keys service (services/keys.py) on a real state DB (SQLite and PostgreSQL) and a real
authorized_keys file: whose keys a member and an admin see and may remove, refusals, and a
file that cannot be written leaving the database as it was."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from spellray.errors import Conflict, InternalError, InvalidInput, NotFound
from spellray.schemas import SshKeyRequest
from spellray.server import db
from spellray.server.auth import ROLE_SCOPES, Principal
from spellray.server.authorized_keys import BEGIN, END
from spellray.server.services.keys import KeyService, install_keys_at_start
from spellray.settings import Settings
from spellray.ssh_keys import generate_ed25519

LAUNCHER = "ssh-rsa AAAAB3launcher ray-autoscaler"


def new_key(comment: str = "") -> str:
    return generate_ed25519(comment)[1]


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    engine = db.make_engine(database_url)
    sessions = db.make_session_factory(engine)
    with sessions() as session:
        users = {name: db.User(name=name, role="member") for name in ("alice", "bob")}
        session.add_all(users.values())
        session.flush()
        admin = session.scalar(select(db.User).where(db.User.name == "admin"))
        people = {name: Principal(kind="session", scopes=ROLE_SCOPES[user.role],
                                  user_id=user.id, user_name=name, role=user.role)
                  for name, user in {**users, "admin": admin}.items()}
        session.commit()
    path = tmp_path / "ssh" / "authorized_keys"
    path.parent.mkdir()
    path.write_text(f"{LAUNCHER}\n")
    ctx: Any = SimpleNamespace(settings=Settings(home=tmp_path, authorized_keys_file=path),
                               sessions=sessions, listen_port=8300)
    yield SimpleNamespace(keys=KeyService(ctx), ctx=ctx, path=path, sessions=sessions, **people)
    engine.dispose()


def block(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return lines[lines.index(BEGIN) + 1:lines.index(END)]


def count(world: SimpleNamespace) -> int:
    with world.sessions() as session:
        return session.scalar(select(func.count()).select_from(db.SshKey))


def test_a_member_sees_and_removes_only_their_keys_and_an_admin_all(
        world: SimpleNamespace) -> None:
    keys = world.keys
    added = keys.add(world.alice, SshKeyRequest(key=new_key("alice@laptop")))
    assert (added.title, added.user, added.installed_in) == ("alice@laptop", "alice",
                                                            str(world.path))
    keys.add(world.bob, SshKeyRequest(key=new_key(), title="desk"))
    keys.add(world.admin, SshKeyRequest(key=new_key(), title="desk"))  # titles are per user
    assert [k.title for k in keys.list(world.alice)] == ["alice@laptop"]
    assert [(k.user, k.title) for k in keys.list(world.bob)] == [("bob", "desk")]
    assert [(k.user, k.title) for k in keys.list(world.admin)] == [
        ("admin", "desk"), ("alice", "alice@laptop"), ("bob", "desk")]
    assert [line.rsplit(" ", 1)[-1] for line in block(world.path)] == [
        "spellray:alice:alice@laptop", "spellray:bob:desk", "spellray:admin:desk"]
    assert world.path.read_text().startswith(f"{LAUNCHER}\n")

    # Bob's key is not found for Alice, whether named as hers or as his.
    for user in (None, "bob"):
        with pytest.raises(NotFound):
            keys.remove(world.alice, "desk", user=user)
    with pytest.raises(NotFound):
        keys.remove(world.bob, "alice@laptop")
    assert count(world) == 3
    keys.remove(world.admin, "alice@laptop", user="alice")  # an admin removes anyone's
    keys.remove(world.bob, "desk")
    assert [line.rsplit(" ", 1)[-1] for line in block(world.path)] == ["spellray:admin:desk"]
    assert [k.user for k in keys.list(world.admin)] == ["admin"]


def test_refusals(world: SimpleNamespace) -> None:
    keys, key = world.keys, new_key("alice@laptop")
    keys.add(world.alice, SshKeyRequest(key=key))
    with pytest.raises(Conflict, match="yours, titled 'alice@laptop'"):
        keys.add(world.alice, SshKeyRequest(key=key, title="again"))
    with pytest.raises(Conflict, match="another user's"):
        keys.add(world.bob, SshKeyRequest(key=key))
    with pytest.raises(Conflict, match="titled 'alice@laptop' already"):
        keys.add(world.alice, SshKeyRequest(key=new_key(), title="alice@laptop"))
    with pytest.raises(InvalidInput, match="--title"):
        keys.add(world.alice, SshKeyRequest(key=new_key("")))
    # The launcher's own key (a line outside the block) is not taken: it may do more there.
    launcher = new_key("ray-autoscaler")
    world.path.write_text(f"{launcher}\n" + world.path.read_text())
    with pytest.raises(Conflict, match="outside spellray's keys"):
        keys.add(world.alice, SshKeyRequest(key=launcher, title="launcher"))
    with pytest.raises(InvalidInput, match="private key"):
        keys.add(world.alice, SshKeyRequest(key=generate_ed25519("")[0].decode()))
    assert count(world) == 1


def test_a_file_that_cannot_be_written_changes_nothing(world: SimpleNamespace,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    keys = world.keys
    keys.add(world.alice, SshKeyRequest(key=new_key(), title="one"))
    broken = world.path.read_text().replace(f"{END}\n", "")  # someone cut the end marker
    world.path.write_text(broken)
    with pytest.raises(InternalError):
        keys.add(world.alice, SshKeyRequest(key=new_key(), title="two"))
    with pytest.raises(InternalError):
        keys.remove(world.alice, "one")
    assert [k.title for k in keys.list(world.alice)] == ["one"]
    assert world.path.read_text() == broken
    # At start the server says so in its log, and starts.
    with caplog.at_level(logging.ERROR):
        install_keys_at_start(world.ctx)
    assert "not installed" in caplog.text and "fix the file by hand" in caplog.text


def test_the_start_puts_back_a_block_someone_removed(world: SimpleNamespace) -> None:
    world.keys.add(world.alice, SshKeyRequest(key=new_key(), title="one"))
    world.path.write_text(f"{LAUNCHER}\nssh-ed25519 AAAAnew carol\n")
    install_keys_at_start(world.ctx)
    lines = world.path.read_text().splitlines()
    assert lines[:2] == [LAUNCHER, "ssh-ed25519 AAAAnew carol"]
    assert [line.rsplit(" ", 1)[-1] for line in block(world.path)] == ["spellray:alice:one"]
