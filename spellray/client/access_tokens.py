"""The SDK's access tokens: ``client.access_tokens`` (`spell access-tokens`), the calling
user's own. The secret is in ``create``'s answer only."""

from __future__ import annotations

from urllib.parse import quote

from spellray.client._http import ResourceGroup, checked
from spellray.schemas import AccessToken, AccessTokenCreated, AccessTokenRequest


class AccessTokens(ResourceGroup):
    def create(self, name: str, expires_days: float | None = None) -> AccessTokenCreated:
        body = checked(AccessTokenRequest, name=name, expires_days=expires_days)
        return AccessTokenCreated.model_validate(self._api.request(
            "POST", "/api/access-tokens", json=body.model_dump()))

    def list(self) -> list[AccessToken]:
        return [AccessToken.model_validate(t)
                for t in self._api.request("GET", "/api/access-tokens")]

    def delete(self, name: str) -> None:
        self._api.request("DELETE", f"/api/access-tokens/{quote(name, safe='')}")
