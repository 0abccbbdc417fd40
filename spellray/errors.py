"""One exception hierarchy for spellray.

Every error the server sends has a wire ``code``; ``WIRE_ERRORS`` is the one explicit table
from code to class, so ``client.runs.get(999)`` raises ``RunNotFound`` whether the error came
from the local process or over HTTP. Errors the SDK raises on its own side (a failed
prediction, say) are never in that table: no client-side class can capture a server's code.
An unknown code comes back as the base class. The CLI catches ``SpellrayError`` once and
prints ``message``.
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


class Forbidden(SpellrayError):
    """The token may see the resource but not do this to it (its scopes do not allow it)."""

    code = "forbidden"
    http_status = 403


class ServerUnavailable(SpellrayError):
    code = "server_unavailable"
    http_status = 503


class RayUnavailable(ServerUnavailable):
    code = "ray_unavailable"


class ConcurrentChange(ServerUnavailable):
    """Two requests changed the same row at once; the loser may simply try again."""

    code = "concurrent_change"


class StorageError(SpellrayError):
    code = "storage_error"
    http_status = 500


class StorageUnreachable(StorageError):
    """The storage endpoint refused or dropped connections for longer than writes retry."""

    code = "storage_unreachable"
    http_status = 503


class RayRefused(SpellrayError):
    """Ray (its Jobs or Serve API) answered, but refused what the server asked of it."""

    code = "ray_refused"
    http_status = 502


class InternalError(SpellrayError):
    """The server failed in a way nobody planned for: a bug, or a broken installation."""

    code = "internal_error"
    http_status = 500


# The server's wire codes, each to one class. Listed by hand, not found by walking
# subclasses, so that a client-side subclass can never answer for a server's code.
WIRE_ERRORS: dict[str, type[SpellrayError]] = {cls.code: cls for cls in (
    SpellrayError, InvalidInput, UnsafePath, NotFound, RunNotFound, Conflict, Unauthorized,
    Forbidden, ServerUnavailable, RayUnavailable, ConcurrentChange, StorageError, RayRefused,
    StorageUnreachable, InternalError,
)}


def error_for_code(code: str, message: str) -> SpellrayError:
    """The exception the SDK raises for a wire error ``code`` (the base class if unknown)."""
    return WIRE_ERRORS.get(code, SpellrayError)(message)
