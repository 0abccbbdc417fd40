"""Spell's ``spell.client``: ``from_environment()`` and ``SpellClient``, with Spell's
services (``runs``, ``hyper``, ``resources``, ``models``, ``servers``) over spellray's SDK.

    import spell.client
    client = spell.client.from_environment()
    run = client.runs.new(command="python train.py", attached_resources={"runs/1": "data"})
    run.wait_status(*client.runs.FINAL)

Inside a run the client speaks to the run's own server with the run's token (the
environment spellray's runner sets); on a laptop, to the cluster ``spell cluster use`` chose.
"""

from __future__ import annotations

import os
from typing import Any

from spell.client.hyper import HyperService
from spell.client.models import ModelsService
from spell.client.resources import ResourcesService
from spell.client.runs import Run, RunsService
from spell.client.servers import ModelServersService
from spellray.client import Client
from spellray.client import from_environment as _spellray_client
from spellray.errors import InvalidInput

# Set by spellray inside a workflow's manager and its runs (Spell's own variable).
WORKFLOW_ID_ENV = "SPELL_WORKFLOW_ID"

__all__ = ["Run", "SpellClient", "from_environment"]


class SpellClient:
    """Spell's client. ``token`` (default: this environment's) is a spellray API token;
    ``owner`` (default: the one `spell owner` chose, else the user's own) is the user or
    team what this client makes belongs to. ``base_url`` (default: this environment's
    server) is a spellray server."""

    def __init__(self, token: str | None = None, owner: str | None = None,
                 base_url: str | None = None, api: Client | None = None) -> None:
        if api is None:
            if token is None and base_url is not None:
                raise InvalidInput("SpellClient(base_url=...) needs the token of that server "
                                   "too: SpellClient(token=..., base_url=...)")
            api = (Client(base_url or _spellray_client().url, token) if token is not None
                   else _spellray_client())
        if owner is not None:
            api = api.as_owner(owner)
        self.owner = owner or getattr(api, "owner", None)
        self.api = api  # spellray's own client, for what Spell's API has no name for
        self.runs = RunsService(api)
        self.hyper = HyperService(api)
        self.resources = ResourcesService(api)
        self.models = ModelsService(api)
        self.servers = ModelServersService(api)

    @property
    def active_workflow(self) -> Any:
        """The workflow this code runs in (its manager, or one of its runs): spellray's
        Workflow (``id``, ``status``, ``manager_run_id``, ``runs``); None outside one."""
        workflow_id = os.environ.get(WORKFLOW_ID_ENV)
        if not workflow_id:
            return None
        return self.api.workflows.get(int(workflow_id))  # type: ignore[attr-defined]


def from_environment() -> SpellClient:
    """A client for this environment: inside a run, the run's server and token; elsewhere
    the cluster ``spell cluster use`` chose, else the local one (started if need be)."""
    return SpellClient(api=_spellray_client())
