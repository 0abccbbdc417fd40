"""Where `spell login` keeps its tokens: SPELLRAY_HOME/logins.json (mode 0600), one login
per server, and which server the CLI and SDK speak to now (``current_place``).

A login is kept apart from the admin token file (SPELLRAY_HOME/token), which the local
server reads when it starts, and from clusters.json, whose token stays the cluster's admin
token: logging out goes back to that token, never loses it. The local server's logins are
under the key "local" (its port may change); every other's under its URL.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from spellray.secret_files import write_secret_json
from spellray.settings import Settings

LOCAL = "local"


@dataclass(frozen=True)
class Login:
    server_url: str
    user: str
    token: str


@dataclass(frozen=True)
class Place:
    """The server a command speaks to: its logins' key, its URL (None: the local server,
    found or started when needed), and the token it uses when nobody logged in (the local
    server's is read from its token file when asked for: the first start writes it)."""

    key: str
    url: str | None
    token: str


def current_place(settings: Settings) -> Place:
    """SPELLRAY_SERVER_URL, else the cluster `spell cluster use` chose, else the local one."""
    if settings.server_url:
        token = settings.token  # SPELLRAY_TOKEN; inside a run, the run's own token
        if not token and settings.token_file.exists():
            token = settings.token_file.read_text().strip()
        url = settings.server_url.rstrip("/")
        return Place(key=url, url=url, token=token)
    from spellray.cluster.registry import selected_cluster

    cluster = selected_cluster(settings.home)
    if cluster is not None:
        url = cluster.server_url.rstrip("/")
        return Place(key=url, url=url, token=cluster.token)
    return Place(key=LOCAL, url=None, token="")


def _path(home: Path) -> Path:
    return home / "logins.json"


def _read(home: Path) -> dict[str, dict[str, str]]:
    try:
        return json.loads(_path(home).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write(home: Path, data: dict[str, dict[str, str]]) -> None:
    """Created 0600 and swapped in whole: the file holds tokens."""
    write_secret_json(_path(home), data)


def get(home: Path, key: str) -> Login | None:
    found = _read(home).get(key)
    return Login(**found) if found else None


def save(home: Path, key: str, login: Login) -> None:
    """Keep a login; a new login starts as its own user (no active owner kept)."""
    data = _read(home)
    data[key] = asdict(login)
    _write(home, data)
    set_owner(home, key, None)


def forget(home: Path, key: str) -> None:
    """Forget a server's login, and its active owner (the next user starts as themself)."""
    data = _read(home)
    if data.pop(key, None) is not None or key in data.get(OWNERS, {}):
        _write(home, data)
        set_owner(home, key, None)


# logins.json's key for the active owners: {place key: owner name} (`spell owner NAME`).
OWNERS = "owners"


def active_owner(settings: Settings, place: Place) -> str | None:
    """The owner `spell owner NAME` chose for this server; None: the user's own. Not inside
    a run (SPELLRAY_TOKEN with SPELLRAY_SERVER_URL): a run makes things for its owner."""
    if settings.server_url and settings.token:
        return None
    return _read(settings.home).get(OWNERS, {}).get(place.key)


def set_owner(home: Path, key: str, owner: str | None) -> None:
    """Remember (None: forget) the active owner for a server."""
    data = _read(home)
    owners = data.get(OWNERS, {})
    if owner is None and key not in owners:
        return
    if owner is None:
        owners.pop(key)
    else:
        owners[key] = owner
    if owners:
        data[OWNERS] = owners
    else:
        data.pop(OWNERS, None)
    _write(home, data)


def token_for(settings: Settings, place: Place) -> str:
    """The token a command uses: SPELLRAY_TOKEN when it names the server too (runs, CI),
    else the login's for this server, else the place's own (the admin's)."""
    if settings.server_url and settings.token:
        return settings.token
    login = get(settings.home, place.key)
    if login is not None:
        return login.token
    if place.url is None:  # the local server (started by now): the admin's token
        return settings.token_file.read_text().strip()
    return place.token
