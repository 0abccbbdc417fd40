"""Users, logins and access tokens: `spell users`, `spell login`, `spell whoami`,
`spell access-tokens`. No secret is ever in a listing: a token is shown once, when made."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from spellray.schemas.base import Schema

USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MIN_PASSWORD = 8
MAX_EXPIRES_DAYS = 3650


def validate_user_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise ValueError(f"bad user name {name!r}: use lowercase letters, digits, '.', '_' "
                         "or '-' (at most 63), starting with a letter or digit")
    return name


def validate_token_name(name: str) -> str:
    if not TOKEN_NAME.match(name):
        raise ValueError(f"bad token name {name!r}: use letters, digits, '.', '_' or '-' "
                         "(at most 100), starting with a letter or digit")
    return name


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    return password


class User(Schema):
    name: str
    role: Literal["admin", "member"]
    has_password: bool = False
    created_at: datetime


class UserRequest(Schema):
    name: str
    admin: bool = False
    password: str | None = None

    _name = field_validator("name")(validate_user_name)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        return None if value is None else validate_password(value)


class UserCreated(Schema):
    user: User
    # One `spell login --token` exchanges it for a lasting token; then it is spent.
    login_token: str
    login_token_expires_at: datetime


class LoginRequest(Schema):
    """Either a token (a one-time login token, or any of the user's lasting ones) or a name
    and password (Spell's `--identity NAME --password P`)."""

    token: str | None = None
    identity: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> LoginRequest:
        if self.token is None and (self.identity is None or self.password is None):
            raise ValueError("log in with a token (--token T) or a name and password "
                             "(--identity NAME --password P)")
        return self


class LoginResult(Schema):
    token: str  # the session's: kept by the CLI (0600), revoked by `spell logout`
    user: User


class WhoAmI(Schema):
    user: str | None  # None: a run's, workflow's or search's token
    owner: str | None  # the active owner: the user's name or a team's (spell owner)
    role: str  # admin | member, or the token's kind for a token of no user
    token_kind: str


class AccessTokenRequest(Schema):
    name: str
    expires_days: float | None = Field(default=None, gt=0, le=MAX_EXPIRES_DAYS)

    _name = field_validator("name")(validate_token_name)


class AccessToken(Schema):
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None


class AccessTokenCreated(AccessToken):
    token: str  # shown once


class TeamRequest(Schema):
    name: str

    _name = field_validator("name")(validate_user_name)  # one namespace with users


class TeamMemberRequest(Schema):
    user: str


class Team(Schema):
    name: str
    members: list[str]
    created_at: datetime


class Owner(Schema):
    """An owner a user may make things for: their own name or a team's."""

    name: str
    kind: Literal["user", "team"]
    active: bool = False
