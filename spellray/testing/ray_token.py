"""One Ray token for a test session or a benchmark run: every head it starts takes it, and
its own Ray clients (the Jobs SDK, `ray.init`, the state API) and the CLIs, servers and heads
it starts find it in the environment, as a user's would (cluster/ray_auth.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from spellray.cluster.ray_auth import clients_token, ensure_token, token_env, token_file


def share_ray_token(folder: Path) -> Path:
    """Make the token in ``folder`` and put it in this process's environment."""
    path = ensure_token(token_file(folder))
    for name, value in token_env(path).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "ray._raylet" in sys.modules:
        # Ray reads the mode once per process: what Ray does when it turns auth on itself.
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    return path


def give_shared_token(home: Path) -> None:
    """Let the head spellray starts for ``home`` (cluster/local.py) take the shared token,
    which it keeps when the file is there already."""
    shared = clients_token()
    if shared is not None:
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shared, token_file(home))
