"""Spell's exceptions, as spellray raises them.

``ClientException`` is spellray's own base error, so ``except ClientException`` catches
every error the API raises (a refused request, a missing run, an unreachable server).
"""

from __future__ import annotations

from spellray.errors import InvalidInput, SpellrayError

ClientException = SpellrayError


class WaitError(SpellrayError):
    """``wait_status`` / ``wait_metric``: the run ended without reaching what was waited for."""

    code = "wait_failed"


class UnsupportedError(InvalidInput):
    """Something Spell did that spellray cannot (yet); the message names spellray's way."""

    code = "unsupported"


__all__ = ["ClientException", "UnsupportedError", "WaitError"]
