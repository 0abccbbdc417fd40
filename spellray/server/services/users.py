"""Users and their logins: `spell users add | list`, `spell login`, `spell logout`,
`spell whoami`. A user's tokens are rows of ``tokens`` that point at the user (auth.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spellray.errors import Conflict, InvalidInput, NotFound, Unauthorized
from spellray.schemas import LoginRequest, LoginResult, User, UserCreated, UserRequest, WhoAmI
from spellray.server import db
from spellray.server.auth import (
    Principal,
    find_token,
    issue_user_token,
    refuse_if_dead,
)
from spellray.server.context import ServerContext
from spellray.server.passwords import hash_password, verify

# A one-time login token's life: long enough to reach its user by chat or mail.
LOGIN_TOKEN_LIFE = timedelta(days=7)
WRONG_LOGIN = ("wrong name or password: check them, or ask an admin for a login token "
               "(spell users add)")


def to_schema(user: db.User) -> User:
    return User(name=user.name, role=user.role, has_password=user.password_hash is not None,
                created_at=user.created_at)


def _login_token(session: Session, user: db.User) -> UserCreated:
    expires = db.utcnow() + LOGIN_TOKEN_LIFE
    token = issue_user_token(session, user, "login", "login token", expires)
    session.commit()
    return UserCreated(user=to_schema(user), login_token=token, login_token_expires_at=expires)


def _session_token(session: Session, user: db.User) -> LoginResult:
    token = issue_user_token(session, user, "session", f"login {db.utcnow():%Y-%m-%d %H:%M}")
    session.commit()
    return LoginResult(token=token, user=to_schema(user))


class UserService:
    def __init__(self, ctx: ServerContext) -> None:
        self.sessions = ctx.sessions

    def add(self, request: UserRequest) -> UserCreated:
        with self.sessions() as session:
            if session.scalar(select(db.User).where(db.User.name == request.name)):
                raise Conflict(f"there is a user {request.name} already; spell users list "
                               "lists them")
            if session.scalar(select(db.Team.id).where(db.Team.name == request.name)):
                raise Conflict(f"there is a team {request.name} (users and teams share "
                               "names); pick another name")
            user = db.User(name=request.name, role="admin" if request.admin else "member",
                           password_hash=hash_password(request.password)
                           if request.password is not None else None)
            session.add(user)
            try:
                session.flush()
            except IntegrityError:  # added at the same moment by another request
                raise Conflict(f"there is a user {request.name} already; spell users list "
                               "lists them") from None
            return _login_token(session, user)

    def login_token(self, name: str) -> UserCreated:
        """A new one-time login token for a user whose first was lost or expired."""
        with self.sessions() as session:
            user = session.scalar(select(db.User).where(db.User.name == name))
            if user is None:
                raise NotFound(f"there is no user {name!r}; spell users list lists them")
            return _login_token(session, user)

    def list(self) -> list[User]:
        with self.sessions() as session:
            return [to_schema(u) for u in session.scalars(select(db.User).order_by(db.User.name))]

    def login(self, request: LoginRequest) -> LoginResult:
        """A new session token, for a name and password or for a token: a one-time login
        token is spent on it; any other of a user's tokens stays as it was."""
        with self.sessions() as session:
            if request.token is None:
                user = session.scalar(select(db.User).where(db.User.name == request.identity))
                if not verify(user.password_hash if user else None, request.password or ""):
                    raise Unauthorized(WRONG_LOGIN)
                assert user is not None
                return _session_token(session, user)
            token = find_token(session, request.token)
            if token is None or token.user is None:
                raise Unauthorized("that token is not a user's: use the login token "
                                   "spell users add printed, or an access token")
            if token.kind == "login" and (token.revoked or token.expires_at is None
                                          or token.expires_at <= db.utcnow()):
                raise Unauthorized("this login token was used already or has expired: ask an "
                                   "admin for a new one (spell users login-token NAME)")
            refuse_if_dead(token)
            if token.kind == "login":
                token.revoked, token.revoked_at = True, db.utcnow()  # one login, then spent
            return _session_token(session, token.user)

    def logout(self, principal: Principal) -> None:
        """Revoke the session token the request came with."""
        if principal.kind != "session" or principal.token_id is None:
            raise InvalidInput(f"this is not a login's token (it is a {principal.kind} "
                               "token): spell logout ends what spell login began")
        with self.sessions() as session:
            token = session.get(db.Token, principal.token_id)
            if token is not None:
                token.revoked, token.revoked_at = True, db.utcnow()
                session.commit()

    @staticmethod
    def whoami(principal: Principal) -> WhoAmI:
        return WhoAmI(user=principal.user_name, owner=principal.owner,
                      role=principal.role or principal.kind, token_kind=principal.kind)
