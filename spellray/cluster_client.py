"""client.cluster: what the server's Ray cluster looks like (`spell cluster status`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spellray.schemas import ClusterStatus

if TYPE_CHECKING:
    from spellray.client import _Api


class Cluster:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def status(self) -> ClusterStatus:
        return ClusterStatus.model_validate(self._api.request("GET", "/api/cluster"))
