"""The spellray SDK: speaks HTTP to the server, nothing else (the CLI is a layer over it).

``Client`` composes one group per resource (``client.runs``, ``client.resources``,
``client.links``, ``client.metrics``, ``client.hyper``, ``client.models``,
``client.model_servers``, ``client.cluster``, ``client.workflows``, ``client.tensorboard``,
``client.workspaces``, ``client.console``, ``client.users``, ``client.access_tokens``,
``client.keys``, ``client.teams``, ``client.projects``),
each a module of this package that imports only the shared HTTP base (``_http.py``) and,
for those that start code, ``_run_request.py``. ``logins.py`` says which server and token.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from spellray.client._http import Api
from spellray.errors import ServerUnavailable
from spellray.settings import Settings, get_settings

if TYPE_CHECKING:
    from spellray.client.access_tokens import AccessTokens
    from spellray.client.cluster import Cluster
    from spellray.client.console import Console
    from spellray.client.hyper import HyperSearches
    from spellray.client.keys import Keys
    from spellray.client.links import Links
    from spellray.client.metrics import Metrics
    from spellray.client.model_servers import ModelServers, PredictionError
    from spellray.client.models import Models
    from spellray.client.projects import Projects
    from spellray.client.resources import Resources
    from spellray.client.runs import Runs
    from spellray.client.teams import Teams
    from spellray.client.tensorboard import TensorBoards
    from spellray.client.users import Users
    from spellray.client.workflows import Workflows
    from spellray.client.workspaces import Workspaces
    from spellray.schemas import ServerInfo, WhoAmI

__all__ = ["Client", "PredictionError", "from_environment"]


def __getattr__(name: str) -> Any:
    if name == "PredictionError":  # with its module, like the groups below
        from spellray.client.model_servers import PredictionError

        return PredictionError
    raise AttributeError(name)


class Client:
    """A spellray server's API, one group per resource over one HTTP session. Each group's
    module (and the schemas it needs) is imported on first use: `spell run` loads runs'
    alone."""

    def __init__(self, url: str, token: str, owner: str | None = None) -> None:
        """``owner``: a team's name (or the user's own) that what this client makes
        belongs to; None: the user's own (the server's default)."""
        self._api = Api(url, token, owner=owner)
        self.url = self._api.url
        self.owner = owner

    def as_owner(self, owner: str | None) -> Client:
        """The same server and token, making things for ``owner`` (a team's name or the
        user's own; the server refuses one the user may not use)."""
        return Client(self.url, self._api.token, owner=owner)

    @cached_property
    def runs(self) -> Runs:
        from spellray.client.runs import Runs

        return Runs(self._api)

    @cached_property
    def resources(self) -> Resources:
        from spellray.client.resources import Resources

        return Resources(self._api)

    @cached_property
    def links(self) -> Links:
        from spellray.client.links import Links

        return Links(self._api)

    @cached_property
    def metrics(self) -> Metrics:
        from spellray.client.metrics import Metrics

        return Metrics(self._api)

    @cached_property
    def hyper(self) -> HyperSearches:
        from spellray.client.hyper import HyperSearches

        return HyperSearches(self._api)

    @cached_property
    def models(self) -> Models:
        from spellray.client.models import Models

        return Models(self._api)

    @cached_property
    def model_servers(self) -> ModelServers:
        from spellray.client.model_servers import ModelServers

        return ModelServers(self._api)

    @cached_property
    def cluster(self) -> Cluster:
        from spellray.client.cluster import Cluster

        return Cluster(self._api)

    @cached_property
    def console(self) -> Console:
        from spellray.client.console import Console

        return Console(self._api)

    @cached_property
    def tensorboard(self) -> TensorBoards:
        from spellray.client.tensorboard import TensorBoards

        return TensorBoards(self._api)

    @cached_property
    def workflows(self) -> Workflows:
        from spellray.client.workflows import Workflows

        return Workflows(self._api)

    @cached_property
    def workspaces(self) -> Workspaces:
        from spellray.client.workspaces import Workspaces

        return Workspaces(self._api)

    @cached_property
    def users(self) -> Users:
        from spellray.client.users import Users

        return Users(self._api)

    @cached_property
    def access_tokens(self) -> AccessTokens:
        from spellray.client.access_tokens import AccessTokens

        return AccessTokens(self._api)

    @cached_property
    def keys(self) -> Keys:
        from spellray.client.keys import Keys

        return Keys(self._api)

    @cached_property
    def projects(self) -> Projects:
        from spellray.client.projects import Projects

        return Projects(self._api)

    @cached_property
    def teams(self) -> Teams:
        from spellray.client.teams import Teams

        return Teams(self._api)

    def whoami(self) -> WhoAmI:
        """Who this client's token speaks for: user, owner, role."""
        return self.users.whoami()

    def info(self) -> ServerInfo:
        from spellray.schemas import ServerInfo

        return ServerInfo.model_validate(self._api.request("GET", "/api/info"))


def from_environment(settings: Settings | None = None, start: bool = True) -> Client:
    """A client for the server this environment points at.

    Inside a run (and wherever SPELLRAY_SERVER_URL is set) that server; else the cluster
    chosen with `spell cluster use`; otherwise the local one under SPELLRAY_HOME, started on
    first use when ``start`` is true. The token: SPELLRAY_TOKEN with SPELLRAY_SERVER_URL,
    else the one `spell login` kept for that server, else the admin's (client/logins.py).
    """
    from spellray.client.logins import active_owner, current_place, token_for

    settings = settings or get_settings()
    place = current_place(settings)
    url = place.url or local_url(settings, start)
    return Client(url, token_for(settings, place), owner=active_owner(settings, place))


def local_url(settings: Settings, start: bool = True) -> str:
    """The local server's URL, started first when ``start`` is true."""
    from spellray.cluster.local import ensure_local_server, local_server_url

    url = ensure_local_server(settings) if start else local_server_url(settings)
    if url is None:
        raise ServerUnavailable("the local spellray server is not running; "
                                "start it with: spell server start")
    return url
