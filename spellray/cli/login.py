"""spell login | logout | whoami: which user this CLI speaks as, per server. The tokens are
kept in SPELLRAY_HOME/logins.json, mode 0600 (client/logins.py)."""

from __future__ import annotations

import sys
from typing import Annotated
from urllib.parse import urlparse

import typer

from spellray.cli.output import console, err


def _place_for(server: str | None):  # -> logins.Place
    from spellray.client.logins import Place, current_place
    from spellray.settings import get_settings

    settings = get_settings()
    if server is None:
        return current_place(settings)
    parsed = urlparse(server)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        from spellray.errors import InvalidInput

        raise InvalidInput(f"bad --server {server!r}: give the server's URL, e.g. "
                           "http://127.0.0.1:8080")
    url = server.rstrip("/")
    return Place(key=url, url=url, token="")


def _use(url: str) -> None:
    """Make ``url`` the server later commands speak to (a clusters.json entry, selected),
    unless SPELLRAY_SERVER_URL already names one."""
    from spellray.cluster import registry
    from spellray.settings import get_settings

    settings = get_settings()
    if settings.server_url:
        if settings.server_url.rstrip("/") != url:
            err.print(f"note: SPELLRAY_SERVER_URL ({settings.server_url}) still wins; unset "
                      f"it to use {url}", markup=False)
        return
    _current, entries = registry.list_clusters(settings.home)
    entry = next((e for e in entries if e.server_url.rstrip("/") == url), None)
    if entry is None:
        entry = registry.ClusterEntry(name=urlparse(url).netloc, server_url=url)
        registry.save(settings.home, entry)
    registry.select(settings.home, entry.name)


def login(
    token: Annotated[str | None, typer.Option("--token", help="the one-time login token spell users add printed (or any of your tokens)")] = None,  # noqa: E501
    server: Annotated[str | None, typer.Option("--server", help="the server's URL (default: the one in use)")] = None,  # noqa: E501
    identity: Annotated[str | None, typer.Option("--identity", help="your user name, to log in with a password")] = None,  # noqa: E501
    password: Annotated[str | None, typer.Option("--password", help="your password (asked, or read from standard input, when not given)")] = None,  # noqa: E501
) -> None:
    """Log in: keep a lasting token for a server (mode 0600) that later commands use.

    spell login --token T exchanges the one-time token spell users add printed;
    spell login --identity NAME --password P logs in with a password."""
    from spellray.cli.users import read_password
    from spellray.client import Client, local_url, logins
    from spellray.errors import InvalidInput
    from spellray.settings import get_settings

    if token is None and identity is None:
        if not sys.stdin.isatty():
            raise InvalidInput("give --token TOKEN, or --identity NAME --password P")
        identity = typer.prompt("User name")
    if identity is not None and password is None:
        password = read_password(confirm=False)
    settings = get_settings()
    place = _place_for(server)
    url = place.url or local_url(settings)
    result = Client(url, "").users.login(token=token, identity=identity, password=password)
    logins.save(settings.home, place.key,
                logins.Login(server_url=url, user=result.user.name, token=result.token))
    if server is not None:
        _use(place.url or url)
    console.print(f"logged in as {result.user.name} ({result.user.role}) at {url}",
                  markup=False)


def logout() -> None:
    """Log out: revoke this server's login token and forget it here."""
    from spellray.client import Client, logins
    from spellray.errors import InvalidInput, ServerUnavailable, Unauthorized
    from spellray.settings import get_settings

    settings = get_settings()
    place = logins.current_place(settings)
    found = logins.get(settings.home, place.key)
    if found is None:
        where = place.url or "the local server"
        raise InvalidInput(f"you are not logged in to {where}: nothing to log out of "
                           "(spell login logs in)")
    try:
        Client(place.url or found.server_url, found.token).users.logout()
    except Unauthorized:
        pass  # revoked already: forgetting it is all that is left
    except ServerUnavailable:
        err.print("note: the server did not answer; the token is forgotten here, and stays "
                  "valid there until it is revoked", markup=False)
    logins.forget(settings.home, place.key)
    console.print(f"logged out {found.user} from {found.server_url}", markup=False)


def whoami() -> None:
    """Who this CLI speaks as: user, owner, server and role."""
    from spellray.client import from_environment

    client = from_environment()
    me = client.whoami()
    console.print(f"user    {me.user or '-'} ({me.token_kind} token)", markup=False)
    console.print(f"owner   {me.owner or '-'}", markup=False)
    console.print(f"server  {client.url}", markup=False)
    console.print(f"role    {me.role}", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
