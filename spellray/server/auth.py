"""Bearer tokens: made on first start, stored hashed in the DB and (mode 0600) in a file."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import Unauthorized
from spellray.server.db import Token


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_secret_file(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (no window where others could read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def ensure_admin_token(session: Session, token_file: Path) -> None:
    """The first start makes the token; later starts keep it (and re-register it if the DB is
    new but the file is not)."""
    if token_file.exists():
        token = token_file.read_text().strip()
    else:
        token = new_token()
        write_secret_file(token_file, token)
    digest = hash_token(token)
    if session.scalar(select(Token).where(Token.token_hash == digest)) is None:
        session.add(Token(token_hash=digest, name="admin"))
        session.commit()


def issue_run_token(session: Session, run_id: int) -> str:
    token = new_token()
    session.add(Token(token_hash=hash_token(token), name=f"run {run_id}", run_id=run_id))
    return token


def issue_search_token(session: Session, search_id: int) -> str:
    """The token a search's driver (and its trial actors) speak to the server with."""
    token = new_token()
    session.add(Token(token_hash=hash_token(token), name=f"search {search_id}"))
    return token


def revoke_search_tokens(session: Session, search_id: int) -> None:
    for token in session.scalars(select(Token).where(Token.name == f"search {search_id}")):
        token.revoked = True


def revoke_run_tokens(session: Session, run_id: int) -> None:
    for token in session.scalars(select(Token).where(Token.run_id == run_id)):
        token.revoked = True


def check_token(session: Session, header: str | None) -> Token:
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("no token: the server needs 'Authorization: Bearer <token>'")
    digest = hash_token(header.removeprefix("Bearer ").strip())
    token = session.scalar(select(Token).where(Token.token_hash == digest))
    if token is None or token.revoked:
        raise Unauthorized("wrong token: use the one in SPELLRAY_HOME/token (or SPELLRAY_TOKEN)")
    return token
