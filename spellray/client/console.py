"""The SDK's console: ``client.console.login_url(7)`` is a one-time link (two minutes) that
logs a browser in to spellray's web console at run 7's page (the runs page without one)."""

from __future__ import annotations

from spellray.client._http import ResourceGroup
from spellray.schemas import UiLogin


class Console(ResourceGroup):
    def login_url(self, run_id: int | None = None) -> str:
        params = {"run_id": run_id} if run_id is not None else {}
        login = UiLogin.model_validate(
            self._api.request("POST", "/api/console/login", params=params))
        return self._api.url + login.login_path
