"""Models: a name and version for a resource path (spell model)."""

from __future__ import annotations

import re
import string
from datetime import datetime

from pydantic import Field, field_validator

from spellray.schemas.base import Schema

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ModelFile(Schema):
    """`spell model create --file PATH[:MOUNT_PATH]`: a file (or folder) of the resource, and
    where it appears in the model's folder (default: the same path)."""

    path: str
    mount_path: str

    @field_validator("path", "mount_path")
    @classmethod
    def _relative(cls, value: str) -> str:
        # Spaces and slashes off both ends together, so that the answer validates again as
        # it is (read back from the DB): 'a/.. /' must not become 'a/.. ' then 'a/..'.
        cleaned = value.strip(string.whitespace + "/")
        parts = cleaned.split("/")
        if not cleaned or any(p in ("", ".", "..") for p in parts) or "\\" in cleaned:
            raise ValueError(f"--file {value!r}: give a path inside the resource (no '..', "
                             "no empty parts), e.g. --file model.h5 or --file out/m.h5:m.h5")
        return cleaned


class ModelRequest(Schema):
    name: str
    version: str | None = None  # v1, v2, ... when not given
    resource: str
    files: list[ModelFile] = Field(default_factory=list)  # none: the whole resource

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not MODEL_NAME.match(value):
            raise ValueError(f"{value!r} is not a model name (letters, digits, . _ -)")
        return value


class Model(Schema):
    name: str
    version: str
    resource: str
    owner: str | None = None  # a user's or a team's name
    files: list[ModelFile] = Field(default_factory=list)
    created_at: datetime
