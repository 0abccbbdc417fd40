"""The SDK's model servers: ``client.model_servers``. Managing them goes through the spellray
server; predictions go straight to the server's endpoint on Ray Serve's proxy."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
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


class ServerNotReady(SpellrayError):
    """A model server failed, stopped, or did not answer in time while the SDK waited for it.
    Raised by the SDK itself (never a wire code)."""

    code = "model_server_not_ready"


# The spellray server's routes for them (Serve's own endpoint is each server's ``endpoint``).
ROUTE = "/api/model-servers"
# Seconds a predict on a deploying server waits for it to answer before it gives up.
PREDICT_WAIT_S = 60.0
_POLL_S = 0.5


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
        when ``entrypoint`` is None. ``options`` are ServingOptions' fields (``min_pods``,
        ``max_pods``, ``target_requests_per_second``, ``machine_type`` or Spell's
        ``node_group``/``serving_group``, ``environment``, ``env``, ``enable_batching``,
        ``max_batch_size``, ``request_timeout_ms`` (batch wait; turns batching on),
        ``answer_timeout_ms``, ``config`` (the predictor's keyword arguments)). Returns at
        once: ``wait_ready(name)`` waits until it answers."""
        options = _node_group(options)
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
        options = _node_group(options)
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
    def _call(self, server: ModelServer, method: str, path: str = "",
              **kwargs: Any) -> httpx.Response:
        return call_endpoint(server, method, path, **kwargs)

    def _answers(self, server: ModelServer) -> bool:
        """Whether the endpoint's health route answers 200 from a replica of the server as it
        is now: its revision (the record's ``updated_at``) is the one the replica was built
        with, so during an update an old replica's answer does not count."""
        try:
            response = self._call(server, "GET", path="/health")
        except ServerUnavailable:
            return False
        if response.status_code != 200:
            return False
        try:
            revision = response.json().get("revision")
        except (ValueError, AttributeError):
            return False
        return revision is None or datetime.fromisoformat(revision) == server.updated_at

    def wait_ready(self, name: str, timeout: float | None = None,
                   progress: Callable[[ModelServer, float], None] | None = None) -> ModelServer:
        """Wait until model server ``name`` is running and answers at its endpoint (``GET
        /health`` is 200 from a replica of its current revision); return it. ServerNotReady
        if it fails or is stopped meanwhile, or after ``timeout`` seconds (None: no limit).
        ``progress(server, seconds_waited)`` is called each poll."""
        started = time.monotonic()
        while True:
            server = self.get(name)
            waited = time.monotonic() - started
            if server.status in ("failed", "stopped"):
                reason = f": {server.status_reason}" if server.status_reason else ""
                raise ServerNotReady(f"model server {name} is {server.status}{reason} "
                                     f"(spell server logs {name} shows why)")
            # running: Serve finished rolling out (no old replica left to answer);
            # answers: a replica built for the record as it is now is up.
            if server.status == "running" and self._answers(server):
                return server
            if progress is not None:
                progress(server, waited)
            if timeout is not None and waited >= timeout:
                raise ServerNotReady(f"model server {name} is {server.status} and did not answer "
                                     f"within {timeout:.0f} s; spell server describe {name} "
                                     "shows its status")
            time.sleep(_POLL_S)

    def predict(self, name: str, payload: Any, wait: float = PREDICT_WAIT_S) -> Any:
        """POST ``payload`` (JSON-serializable) to the server's endpoint; its answer. A server
        that is still deploying is waited for, up to ``wait`` seconds (0: not at all)."""
        server = self.get(name)
        if server.status == "deploying" and wait > 0:
            server = self.wait_ready(name, timeout=wait)
        return predict_at(server, payload)

    def validate(self, entrypoint: str, classname: str | None = None,
                 config: dict[str, Any] | None = None, code_dir: Path | str = ".") -> str:
        """As `spell server serve --validate` (see ``validate_predictor``); nothing deployed."""
        return validate_predictor(entrypoint, classname, config, code_dir)

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


def call_endpoint(server: ModelServer, method: str, path: str = "",
                  **kwargs: Any) -> httpx.Response:
    """A request to the server's endpoint on Serve's proxy, with its token (``server`` as
    describe gives it). The console's predict box calls it too."""
    headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
    assert server.endpoint is not None
    try:
        return httpx.request(method, server.endpoint + path, headers=headers, timeout=60,
                             **kwargs)
    except httpx.TransportError as exc:
        raise ServerUnavailable(f"model server {server.name} is not answering at "
                                f"{server.endpoint} ({type(exc).__name__}); "
                                f"it is {server.status}") from exc


def predict_at(server: ModelServer, payload: Any) -> Any:
    """POST ``payload`` to the server's endpoint; its JSON answer (PredictionError if it
    refuses)."""
    response = call_endpoint(server, "POST", json=payload)
    if response.status_code >= 400:
        raise _prediction_error(server, response)
    return response.json()


def _node_group(options: dict[str, Any]) -> dict[str, Any]:
    """Spell's ``node_group`` (older: ``serving_group``), the serving machine pool, is the
    machine type on spellray."""
    options = dict(options)
    groups = {g for g in (options.pop("node_group", None), options.pop("serving_group", None))
              if g}
    if len(groups) > 1:
        raise InvalidInput("node_group and serving_group name the same thing; give one")
    if groups:
        group = groups.pop()
        if options.get("machine_type") not in (None, group):
            raise InvalidInput(f"machine_type {options['machine_type']} and node_group {group} "
                               "disagree; give one (the node group is the machine type)")
        options["machine_type"] = group
    return options


def _prediction_error(server: ModelServer, response: httpx.Response) -> PredictionError:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()[:300] or response.reason_phrase
    if response.status_code == 404:
        message = f"model server {server.name} is {server.status} (Serve: {message})"
    return PredictionError(f"{server.name} answered {response.status_code}: {message}",
                           response.status_code)


def validate_predictor(entrypoint: str, classname: str | None = None,
                       config: dict[str, Any] | None = None,
                       code_dir: Path | str = ".") -> str:
    """Import the predictor file here and check its class (``predict`` is there, the
    ``config`` keys fit ``__init__``), as `spell server serve --validate` does; nothing is
    deployed. Returns the class's name; InvalidInput says what is wrong."""
    from spellray.serve.predictor import check_class, load_module, pick_class

    if not (Path(code_dir) / entrypoint).is_file():
        raise InvalidInput(f"{entrypoint}: no such file in {Path(code_dir).resolve()}")
    saved_path = list(sys.path)
    try:
        module = load_module(Path(code_dir), entrypoint)
    except InvalidInput:
        raise
    except (Exception, SystemExit) as exc:  # the user's module: its failure, shown as such
        raise InvalidInput(f"{entrypoint}: importing it failed: {type(exc).__name__}: "
                           f"{exc} (missing packages: install them here, and give them "
                           "to the server with --pip)") from None
    finally:
        sys.path[:] = saved_path
    cls = pick_class(module, entrypoint, classname)
    check_class(cls, config or {}, entrypoint)
    return cls.__name__
