"""Ray's own token (RAY_AUTH_MODE=token): what keeps outsiders off a Ray head's ports.

A head spellray starts uses a token spellray makes and keeps (``SPELLRAY_HOME/ray_auth_token``,
0600), handed to Ray by path: a user's own ``~/.ray/auth_token`` (which Ray 2.60's `ray
start` and `ray.init()` otherwise read, and `ray.init()` writes) is neither used nor touched.
Ray's processes pass the variables on to the workers and job drivers they start, so the
runner's `ray.init()` is let in too. Any other head is reached with whatever token the
environment gives (Ray's own rules: RAY_AUTH_TOKEN, else RAY_AUTH_TOKEN_PATH, else
``~/.ray/auth_token``, when RAY_AUTH_MODE=token).

Standard library only at import: the CLI imports this to start a local head.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from spellray.errors import RayUnavailable
from spellray.secret_files import write_secret_text

TOKEN_FILE = "ray_auth_token"
# Ray reads the token from the first of these that is set.
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def token_file(home: Path) -> Path:
    return home / TOKEN_FILE


def ensure_token(path: Path) -> Path:
    """The token file at ``path``, made (256 random bits, as Ray makes its own) if missing:
    a head restarted later keeps the token its nodes and clients already have."""
    try:
        if path.read_text().strip():
            return path
    except FileNotFoundError:
        pass
    write_secret_text(path, secrets.token_hex(32))
    return path


def read_token(path: Path) -> str:
    return path.read_text().strip()


def token_env(path: Path) -> dict[str, str | None]:
    """The environment that makes a Ray process (a head and what it starts, or a client)
    use the token in ``path``. None: unset, since an inherited RAY_AUTH_TOKEN (a user's
    token for another cluster) would win over the file."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path), "RAY_AUTH_TOKEN": None}


def clients_token() -> Path | None:
    """The token file this process's Ray clients use, if the environment names one
    (tests and benchmarks give theirs to every head they start: testing/ray_token.py)."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if os.environ.get("RAY_AUTH_MODE") == "token" and path and \
            not os.environ.get("RAY_AUTH_TOKEN"):
        return Path(path)
    return None


def bearer(path: Path) -> dict[str, str]:
    """The token in ``path`` as an HTTP header, for a client that knows which file it is."""
    return {"Authorization": f"Bearer {read_token(path)}"}


def http_headers() -> dict[str, str]:
    """Ray's token as an HTTP header for a head's dashboard, from where Ray's own clients
    in this process (the Jobs SDK, the state API) find it; empty unless RAY_AUTH_MODE=token.
    For the server's own requests to the dashboard (Serve's REST API, logs, the proxy)."""
    from ray._private.authentication.http_token_authentication import (
        get_auth_headers_if_auth_enabled,
    )

    try:
        return get_auth_headers_if_auth_enabled({})
    except Exception as exc:  # ray.exceptions.AuthenticationError: a token file missing
        raise RayUnavailable(f"Ray's token could not be read ({exc}); see docs/security.md "
                             "(Ray's own token)") from exc
