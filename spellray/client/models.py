"""The SDK's models: ``client.models`` (HTTP)."""

from __future__ import annotations

from spellray.client._http import ResourceGroup, checked
from spellray.schemas import Model, ModelRequest


def split_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition(":")
    return name, version or None


def parse_file(value: str) -> dict[str, str]:
    """``PATH[:MOUNT_PATH]`` -> {"path", "mount_path"} (checked by ModelFile)."""
    path, _, mount = value.partition(":")
    return {"path": path, "mount_path": mount or path}


class Models(ResourceGroup):
    def create(self, ref: str, resource: str, files: list[str] | None = None) -> Model:
        """``ref`` is NAME or NAME:VERSION (v1, v2, ... when not given). ``files``: Spell's
        ``--file PATH[:MOUNT_PATH]`` values; when given, only those files of ``resource`` are
        the model, each at MOUNT_PATH (default PATH) in the model's folder."""
        name, version = split_ref(ref)
        body = checked(ModelRequest, name=name, version=version, resource=resource,
                       files=[parse_file(f) for f in files or []])
        return Model.model_validate(self._api.request("POST", "/api/models",
                                                      json=body.model_dump(mode="json")))

    def list(self) -> list[Model]:
        return [Model.model_validate(m) for m in self._api.request("GET", "/api/models")]

    def versions(self, name: str) -> list[Model]:
        return [Model.model_validate(m) for m in self._api.request("GET", f"/api/models/{name}")]

    def get(self, ref: str) -> Model:
        """NAME:VERSION, or NAME for its newest version."""
        name, version = split_ref(ref)
        if version is None:
            return self.versions(name)[-1]
        return Model.model_validate(self._api.request("GET", f"/api/models/{name}/{version}"))

    def delete(self, ref: str) -> Model:
        name, version = split_ref(ref)
        return Model.model_validate(
            self._api.request("DELETE", f"/api/models/{name}/{version or '-'}"))
