"""Content-addressed code packages (code/<sha256>.zip): uploaded once, by sha256, then named
by the runs and model servers that execute them."""

from __future__ import annotations

import hashlib

from spellray.errors import InvalidInput, NotFound
from spellray.server.context import ServerContext
from spellray.storage.paths import join


def code_path(sha256: str) -> str:
    return join("code", f"{sha256}.zip")


def _checked(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInput(f"{sha256!r} is not a sha256 hex digest")
    return sha256


class CodeService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def exists(self, sha256: str) -> bool:
        return self.ctx.storage.exists(code_path(_checked(sha256)))

    def check_uploaded(self, sha256: str) -> None:
        if not self.exists(sha256):
            raise NotFound(f"code package {sha256[:12]} is not uploaded")

    def require(self, sha256: str | None, what: str) -> None:
        """For a run or a model server about to be made: ``what`` names the package."""
        if not sha256 or not self.exists(sha256):
            raise InvalidInput(f"{what} is not uploaded; PUT it to /api/code/<sha256> first")

    def save(self, sha256: str, data: bytes) -> None:
        if hashlib.sha256(data).hexdigest() != _checked(sha256):
            raise InvalidInput("the uploaded code does not match its sha256; upload it again")
        self.ctx.storage.write_bytes(code_path(sha256), data)
