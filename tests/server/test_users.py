"""Users and their tokens on a real SQLite file: the migration that gives today's admin token
to the admin user, expiry, revocation, one-time login tokens, the once-a-minute record of a
token's last use, and what a member may do."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from spellray.errors import Forbidden, Unauthorized
from spellray.server import db
from spellray.server.auth import (
    TOUCH_EVERY,
    Scope,
    check_access,
    check_token,
    ensure_admin_token,
    hash_token,
    issue_user_token,
    principal_of,
)
from spellray.server.passwords import hash_password, verify
from tests.server.old_db import db_at_revision


def _member(session: Session, name: str = "alice") -> db.User:
    user = db.User(name=name, role="member")
    session.add(user)
    session.flush()
    return user


def test_an_upgraded_server_keeps_its_admin_token_and_it_is_the_admin_users(
        empty_database_url: str, tmp_path: Path) -> None:
    url = empty_database_url
    engine = db_at_revision(url, "0012")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO tokens (token_hash, name, kind, scopes, revoked, created_at) VALUES "
            "(:hash, 'admin', 'admin', 'admin', :revoked, '2024-01-01 00:00:00')"),
            {"hash": hash_token("the-old-token"), "revoked": False})
    db.migrate(url)
    token_file = tmp_path / "token"
    token_file.write_text("the-old-token\n")
    with db.make_session_factory(engine)() as session:
        ensure_admin_token(session, token_file)  # the next start: nothing new to make
        assert session.scalar(select(db.User.name)) == "admin"
        assert len(session.scalars(select(db.Token)).all()) == 1
        principal = principal_of(check_token(session, "Bearer the-old-token"))
    assert principal.is_admin and (principal.user_name, principal.role) == ("admin", "admin")
    assert token_file.read_text() == "the-old-token\n"  # the laptop notices nothing
    engine.dispose()


def test_the_first_start_makes_the_admin_user_and_their_token(session: Session,
                                                               tmp_path: Path) -> None:
    token_file = tmp_path / "home" / "token"
    ensure_admin_token(session, token_file)
    ensure_admin_token(session, token_file)  # a second start changes nothing
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    token = check_token(session, f"Bearer {token_file.read_text()}")
    assert (token.kind, token.user.name, token.user.role) == ("admin", "admin", "admin")
    assert session.scalar(select(db.User).where(db.User.name == "admin")) is not None
    assert len(session.scalars(select(db.Token)).all()) == 1


def test_expired_revoked_and_one_time_tokens_are_refused_with_what_to_do(
        session: Session) -> None:
    user = _member(session)
    past = db.utcnow() - timedelta(seconds=1)
    expired = issue_user_token(session, user, "access", "old", expires_at=past)
    revoked = issue_user_token(session, user, "access", "gone")
    login = issue_user_token(session, user, "login", "login token",
                             expires_at=db.utcnow() + timedelta(days=1))
    session.commit()
    session.scalar(select(db.Token).where(db.Token.name == "gone")).revoked = True
    session.commit()
    for secret, words in [(expired, "token expired: run spell login or spell access-tokens"),
                          (revoked, "token revoked"), (login, "one-time login token"),
                          ("nobody's", "wrong token")]:
        with pytest.raises(Unauthorized, match=words) as caught:
            check_token(session, f"Bearer {secret}")
        assert "\n" not in caught.value.message


def test_last_use_is_written_at_most_once_a_minute(session: Session) -> None:
    user = _member(session)
    secret = issue_user_token(session, user, "access", "ci")
    session.commit()
    first = check_token(session, f"Bearer {secret}")
    session.expire_all()
    used = session.get(db.Token, first.id).last_used_at
    assert used is not None
    check_token(session, f"Bearer {secret}")  # within the minute: not written again
    session.expire_all()
    assert session.get(db.Token, first.id).last_used_at == used
    row = session.get(db.Token, first.id)
    row.last_used_at = used - TOUCH_EVERY - timedelta(seconds=1)  # a minute on
    session.commit()
    check_token(session, f"Bearer {secret}")
    session.expire_all()
    assert session.get(db.Token, first.id).last_used_at > used - TOUCH_EVERY


def test_a_member_does_member_things_but_not_an_admins(session: Session) -> None:
    user = _member(session)
    run = db.Run(command="true", machine_type="CPU", status="running")
    session.add(run)
    secret = issue_user_token(session, user, "session", "login")
    session.commit()
    member = principal_of(check_token(session, f"Bearer {secret}"))
    assert (member.user_name, member.role, member.is_admin, member.is_user) == (
        "alice", "member", False, True)
    for scope in (Scope.user, Scope.runs_read, Scope.runs_create, Scope.runs_control,
                  Scope.resources_read):
        check_access(session, member, scope, {"run_id": str(run.id)})
    with pytest.raises(Forbidden, match="only an admin may do this"):
        check_access(session, member, Scope.admin, {})
    # The role is read at each request: an admin made of a member is one at once.
    user.role = "admin"
    session.commit()
    assert principal_of(check_token(session, f"Bearer {secret}")).is_admin


def test_passwords_are_argon2_and_unknown_users_fail_like_wrong_passwords() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert verify(stored, "correct horse")
    assert not verify(stored, "wrong horse")
    assert not verify(None, "correct horse")
    assert not verify(None, "a password nobody has")  # the stand-in's own never opens it
    assert not verify("not a hash", "x")
