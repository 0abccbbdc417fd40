"""The SDK's SSH keys: ``client.keys`` (`spell keys`), the calling user's (an admin's list
has everyone's). Public keys only: a private key never leaves the machine it was made on."""

from __future__ import annotations

from urllib.parse import quote

from spellray.client._http import ResourceGroup, checked
from spellray.schemas import SshKey, SshKeyAdded, SshKeyRequest


class Keys(ResourceGroup):
    def add(self, public_key: str, title: str | None = None) -> SshKeyAdded:
        """Register a public key (``TYPE BASE64 [COMMENT]``, a .pub file's text); ``title``
        defaults to its comment."""
        body = checked(SshKeyRequest, key=public_key, title=title)
        return SshKeyAdded.model_validate(self._api.request(
            "POST", "/api/keys", json=body.model_dump()))

    def list(self) -> list[SshKey]:
        return [SshKey.model_validate(k) for k in self._api.request("GET", "/api/keys")]

    def remove(self, title: str, user: str | None = None) -> None:
        """Your key ``title``; an admin removes another user's with ``user``."""
        self._api.request("DELETE", f"/api/keys/{quote(title, safe='')}",
                          params={"user": user} if user else None)
