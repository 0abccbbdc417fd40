"""The SDK's model servers: ``client.model_servers``. Managing them goes through the spellray
server; predictions go straight to the server's endpoint on Ray Serve's proxy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from spellray.client._http import ResourceGroup, checked
from spellray.client._run_request import upload_code
from spellray.errors import InvalidInput, ServerUnavailable, SpellrayError, Unauthorized
from spellray.schemas import (
    ModelServer,
    ModelServerLogs,
    ModelServerRequest,
    ModelServerUpdate,
    ServingOptions,
)


class PredictionError(SpellrayError):
    """The endpoint refused or failed a prediction (``status`` is its HTTP status). Raised by
    the SDK itself, from Serve's answer: never a spellray server's wire code."""

    code = "prediction_failed"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# The spellray server's routes for them (Serve's own endpoint is each server's ``endpoint``).
ROUTE = "/api/model-servers"


class ModelServers(ResourceGroup):
    def _code(self, entrypoint: str | None, code_dir: Path | str) -> dict[str, Any] | None:
        if not entrypoint:
            return None
        if not (Path(code_dir) / entrypoint).is_file():
            raise InvalidInput(f"{entrypoint}: no such file in {Path(code_dir).resolve()}")
        return upload_code(self._api, Path(code_dir))

    def serve(self, model: str, entrypoint: str | None = None, *, name: str | None = None,
              classname: str | None = None, public: bool = False,
              code_dir: Path | str = ".", **options: Any) -> ModelServer:
        """Serve ``model`` (NAME[:VERSION]) with the predictor class in ``entrypoint`` (a file
        of ``code_dir``, packaged like a run's code), or with the built-in MLflow predictor
        when ``entrypoint`` is None. ``options`` are ServingOptions' fields."""
        request = checked(ModelServerRequest, name=name or model.partition(":")[0].lower(),
                           model=model, entrypoint=entrypoint, classname=classname,
                           public=public, code=self._code(entrypoint, code_dir),
                           options=checked(ServingOptions, **options))
        return ModelServer.model_validate(
            self._api.request("POST", ROUTE, json=request.model_dump(mode="json")))

    def list(self) -> list[ModelServer]:
        return [ModelServer.model_validate(s) for s in self._api.request("GET", ROUTE)]

    def get(self, name: str) -> ModelServer:
        """The server, with its endpoint and token."""
        return ModelServer.model_validate(self._api.request("GET", f"{ROUTE}/{name}"))

    def update(self, name: str, model: str | None = None, entrypoint: str | None = None,
               classname: str | None = None, code_dir: Path | str = ".",
               **options: Any) -> ModelServer:
        checked(ServingOptions, **options)  # bad values refused here, in the same words
        change = ModelServerUpdate(model=model, entrypoint=entrypoint, classname=classname,
                                   code=self._code(entrypoint, code_dir), options=options)
        return ModelServer.model_validate(self._api.request(
            "PATCH", f"{ROUTE}/{name}", json=change.model_dump(mode="json")))

    def start(self, name: str) -> ModelServer:
        return ModelServer.model_validate(self._api.request("POST", f"{ROUTE}/{name}/start"))

    def stop(self, name: str) -> ModelServer:
        return ModelServer.model_validate(self._api.request("POST", f"{ROUTE}/{name}/stop"))

    def delete(self, name: str) -> None:
        self._api.request("DELETE", f"{ROUTE}/{name}")

    def logs(self, name: str) -> str:
        return ModelServerLogs.model_validate(
            self._api.request("GET", f"{ROUTE}/{name}/logs")).text

    # -- the endpoint itself ----------------------------------------------------------------
    def _call(self, server: ModelServer, method: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
        assert server.endpoint is not None
        try:
            return httpx.request(method, server.endpoint, headers=headers, timeout=60,
                                 **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"model server {server.name} is not answering at "
                                    f"{server.endpoint} ({type(exc).__name__}); "
                                    f"it is {server.status}") from exc

    def predict(self, name: str, payload: Any) -> Any:
        """POST ``payload`` (JSON-serializable) to the server's endpoint; its answer."""
        server = self.get(name)
        response = self._call(server, "POST", json=payload)
        if response.status_code >= 400:
            raise _prediction_error(server, response)
        return response.json()

    def healthcheck(self, name: str) -> dict[str, Any]:
        """The predictor's health: {"healthy": bool, ...} (its ``health()``, if it has one)."""
        server = self.get(name)
        response = self._call(server, "GET")
        try:
            body = response.json()
        except ValueError:
            body = {"healthy": False, "reason": f"{response.status_code} {response.text[:200]}"}
        if response.status_code == 401:
            raise Unauthorized(body.get("error", {}).get("message", "token refused"))
        return body


def _prediction_error(server: ModelServer, response: httpx.Response) -> PredictionError:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()[:300] or response.reason_phrase
    if response.status_code == 404:
        message = f"model server {server.name} is {server.status} (Serve: {message})"
    return PredictionError(f"{server.name} answered {response.status_code}: {message}",
                           response.status_code)
