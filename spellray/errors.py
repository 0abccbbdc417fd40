"""One exception hierarchy for spellray.

Every error the server raises on purpose has a wire ``code``; the SDK maps the code back to the
same class, so ``client.runs.get(999)`` raises ``RunNotFound`` whether the error came from the
local process or over HTTP. The CLI catches ``SpellrayError`` once and prints ``message``.
"""

from __future__ import annotations


class SpellrayError(Exception):
    """Base class. ``message`` is one line that says what went wrong and what to do."""

    code = "error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SpellrayError):
    code = "invalid_input"
    http_status = 400


class UnsafePath(InvalidInput):
    code = "unsafe_path"


class NotFound(SpellrayError):
    code = "not_found"
    http_status = 404


class RunNotFound(NotFound):
    code = "run_not_found"


class Conflict(SpellrayError):
    code = "conflict"
    http_status = 409


class Unauthorized(SpellrayError):
    code = "unauthorized"
    http_status = 401


class ServerUnavailable(SpellrayError):
    code = "server_unavailable"
    http_status = 503


class RayUnavailable(ServerUnavailable):
    code = "ray_unavailable"


class StorageError(SpellrayError):
    code = "storage_error"
    http_status = 500


def _all_subclasses(cls: type[SpellrayError]) -> list[type[SpellrayError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_for_code(code: str, message: str) -> SpellrayError:
    """The exception the SDK raises for a wire error ``code``."""
    by_code = {cls.code: cls for cls in _all_subclasses(SpellrayError)}
    return by_code.get(code, SpellrayError)(message)
