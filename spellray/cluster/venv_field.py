"""The runtime_env field of spellray's Python environments, as the server writes it and every
node's Ray loads its plugin (venv_plugin.py, which says why it exists). Standard library only:
the CLI imports this to start a local Ray head."""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

# The runtime_env field, and the folder under Ray's runtime_resources where its envs live.
FIELD = "spellray_venv"
PLUGIN_CLASS = "spellray.cluster.venv_plugin.VenvPlugin"
# Set by the plugin in the job's environment to the env's hash: proof the plugin ran.
MARK_VAR = "SPELLRAY_VENV"


def ray_env_vars() -> dict[str, str]:
    """What a node's `ray start` needs in its environment for Ray to load the plugin."""
    return {"RAY_RUNTIME_ENV_PLUGINS": json.dumps([{"class": PLUGIN_CLASS}])}


def shell_assignments() -> str:
    """The same, for a cluster launcher's start commands (``export ...``)."""
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in ray_env_vars().items())


def field(packages: list[str]) -> dict[str, Any]:
    return {"packages": list(packages)}


def env_hash(value: dict[str, Any]) -> str:
    """sha1 of the field: the environment's folder name and URI (40 hex digits, as Ray
    names its own resource folders, which is how the server finds its set-up log lines)."""
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()
