"""`spell access-tokens create | list | delete`: a user's named, lasting tokens for scripts
and CI, stored hashed and shown once. Deleting one revokes it at once (the row stays, so a
request with it is told it was revoked rather than that it is wrong)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import Conflict, Forbidden, NotFound
from spellray.schemas import AccessToken, AccessTokenCreated, AccessTokenRequest
from spellray.server import db
from spellray.server.auth import Principal, issue_user_token
from spellray.server.context import ServerContext


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise Forbidden(f"a {principal.kind} token has no access tokens; use a user's token "
                        "(spell login)")
    return principal.user_id


def _live(session: Session, user_id: int, name: str | None = None) -> list[db.Token]:
    query = select(db.Token).where(db.Token.user_id == user_id, db.Token.kind == "access",
                                   db.Token.revoked.is_(False))
    if name is not None:
        query = query.where(db.Token.name == name)
    return list(session.scalars(query.order_by(db.Token.created_at, db.Token.id)))


def _to_schema(token: db.Token) -> AccessToken:
    return AccessToken(name=token.name, created_at=token.created_at,
                       last_used_at=token.last_used_at, expires_at=token.expires_at)


class AccessTokenService:
    def __init__(self, ctx: ServerContext) -> None:
        self.sessions = ctx.sessions

    def create(self, principal: Principal, request: AccessTokenRequest) -> AccessTokenCreated:
        user_id = _user_id(principal)
        with self.sessions() as session:
            if _live(session, user_id, request.name):
                raise Conflict(f"you have an access token {request.name} already; choose "
                               f"another name, or spell access-tokens delete {request.name}")
            user = session.get(db.User, user_id)
            assert user is not None  # its token was just checked
            expires = None if request.expires_days is None else \
                db.utcnow() + timedelta(days=request.expires_days)
            secret = issue_user_token(session, user, "access", request.name, expires)
            session.commit()
            row = _live(session, user_id, request.name)[-1]
            return AccessTokenCreated(**_to_schema(row).model_dump(), token=secret)

    def list(self, principal: Principal) -> list[AccessToken]:
        with self.sessions() as session:
            return [_to_schema(t) for t in _live(session, _user_id(principal))]

    def delete(self, principal: Principal, name: str) -> None:
        with self.sessions() as session:
            found = _live(session, _user_id(principal), name)
            if not found:
                raise NotFound(f"you have no access token {name!r}; spell access-tokens list "
                               "lists them")
            for token in found:
                token.revoked, token.revoked_at = True, db.utcnow()
            session.commit()
