"""Spell's ``client.servers``: model servers over spellray's ``client.model_servers``
(Ray Serve). ``**options`` go through to spellray unchanged: see docs/model-servers.md."""

from __future__ import annotations

from typing import Any

from spell.api.record_view import RecordView
from spellray.client import Client


class ModelServer(RecordView):
    """A model server: ``name``, ``status``, ``endpoint``; ``predict``, ``healthcheck``,
    ``logs``. Other attributes read through to spellray's record."""

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def status(self) -> str:
        status = self._record.status
        return str(getattr(status, "value", status))

    def refresh(self) -> None:
        self._record = self._client.model_servers.get(self.name)

    def predict(self, payload: Any) -> Any:
        """POST ``payload`` (JSON) to the server; its answer (PredictionError if refused)."""
        return self._client.model_servers.predict(self.name, payload)

    def healthcheck(self) -> dict[str, Any]:
        return self._client.model_servers.healthcheck(self.name)

    def logs(self) -> str:
        return self._client.model_servers.logs(self.name)

    def start(self) -> None:
        self._record = self._client.model_servers.start(self.name)

    def stop(self) -> None:
        self._record = self._client.model_servers.stop(self.name)

    def delete(self) -> None:
        self._client.model_servers.delete(self.name)


class ModelServersService:
    def __init__(self, client: Client) -> None:
        self._client = client

    def serve(self, model: str, entrypoint: str | None = None, name: str | None = None,
              **options: Any) -> ModelServer:
        """Serve ``model`` (NAME[:VERSION]) with the predictor in ``entrypoint`` (a file of
        ``code_dir``, default "."); ``options`` are spellray's (classname, machine_type,
        min_replicas, ...: docs/model-servers.md)."""
        return ModelServer(self._client, self._client.model_servers.serve(
            model, entrypoint, name=name, **options))

    def get(self, name: str) -> ModelServer:
        return ModelServer(self._client, self._client.model_servers.get(name))

    def list(self) -> list[ModelServer]:
        return [ModelServer(self._client, s) for s in self._client.model_servers.list()]

    def update(self, name: str, **options: Any) -> ModelServer:
        return ModelServer(self._client, self._client.model_servers.update(name, **options))
