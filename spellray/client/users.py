"""The SDK's users: ``client.users`` (`spell users add | list`, `spell login`, `spell logout`,
`spell whoami`)."""

from __future__ import annotations

from urllib.parse import quote

from spellray.client._http import ResourceGroup, checked
from spellray.schemas import LoginRequest, LoginResult, User, UserCreated, UserRequest, WhoAmI


class Users(ResourceGroup):
    def add(self, name: str, admin: bool = False, password: str | None = None) -> UserCreated:
        """A new user (admins only) and a one-time login token for them."""
        body = checked(UserRequest, name=name, admin=admin, password=password)
        return UserCreated.model_validate(self._api.request(
            "POST", "/api/users", json=body.model_dump()))

    def login_token(self, name: str) -> UserCreated:
        """A new one-time login token for ``name`` (admins only), for a lost or expired one."""
        return UserCreated.model_validate(self._api.request(
            "POST", f"/api/users/{quote(name, safe='')}/login-token"))

    def list(self) -> list[User]:
        return [User.model_validate(u) for u in self._api.request("GET", "/api/users")]

    def login(self, token: str | None = None, identity: str | None = None,
              password: str | None = None) -> LoginResult:
        """A lasting session token for a login token (or any of the user's tokens), or for a
        name and password. Needs no token of its own."""
        body = checked(LoginRequest, token=token, identity=identity, password=password)
        return LoginResult.model_validate(self._api.request(
            "POST", "/api/login", json=body.model_dump(exclude_none=True)))

    def logout(self) -> None:
        """Revoke this client's session token."""
        self._api.request("POST", "/api/logout")

    def whoami(self) -> WhoAmI:
        return WhoAmI.model_validate(self._api.request("GET", "/api/whoami"))
