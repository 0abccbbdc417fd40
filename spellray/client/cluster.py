"""client.cluster: what the server's Ray cluster looks like (`spell cluster status`)."""

from __future__ import annotations

from spellray.client._http import ResourceGroup
from spellray.schemas import ClusterStatus


class Cluster(ResourceGroup):
    def status(self) -> ClusterStatus:
        return ClusterStatus.model_validate(self._api.request("GET", "/api/cluster"))
