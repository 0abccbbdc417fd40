"""The SDK's links: ``client.links`` (``spell link NAME PATH``: a name for a resource path)."""

from __future__ import annotations

from spellray.client._http import ResourceGroup
from spellray.schemas import Link
from spellray.storage.paths import validate_alias


class Links(ResourceGroup):
    def list(self) -> list[Link]:
        return [Link.model_validate(x) for x in self._api.request("GET", "/api/links")]

    def get(self, alias: str) -> Link:
        return Link.model_validate(
            self._api.request("GET", f"/api/links/{validate_alias(alias)}"))

    def create(self, alias: str, path: str) -> Link:
        return Link.model_validate(self._api.request(
            "PUT", f"/api/links/{validate_alias(alias)}", json={"alias": alias, "path": path}))

    def delete(self, alias: str) -> None:
        self._api.request("DELETE", f"/api/links/{validate_alias(alias)}")
