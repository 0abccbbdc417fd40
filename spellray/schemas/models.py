"""Models: a name and version for a resource path (spell model)."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import field_validator

from spellray.schemas.base import Schema

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ModelRequest(Schema):
    name: str
    version: str | None = None  # v1, v2, ... when not given
    resource: str

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
    created_at: datetime
