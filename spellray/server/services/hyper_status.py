"""The one function that changes a search's status."""

from __future__ import annotations

from sqlalchemy.orm import Session

from spellray.errors import Conflict
from spellray.schemas import SearchStatus
from spellray.server.auth import revoke_search_tokens
from spellray.server.db import HyperSearch, HyperSearchEvent, utcnow

_ENDS = frozenset(s for s in SearchStatus if s.is_terminal)
# Where each status may go: a stop is never taken back, an ended search never changes.
ALLOWED: dict[SearchStatus, frozenset[SearchStatus]] = {
    SearchStatus.running: _ENDS | {SearchStatus.stopping},
    SearchStatus.stopping: _ENDS,
    **{end: frozenset() for end in _ENDS},
}


def change_search_status(session: Session, search: HyperSearch, status: SearchStatus,
                         reason: str | None = None) -> bool:
    """Move ``search`` to ``status``; return whether it changed (False: it has it already).
    A move ALLOWED does not list is a Conflict. An ended search's token is revoked."""
    current = SearchStatus(search.status)
    if status == current:
        return False
    if status not in ALLOWED[current]:
        raise Conflict(f"search {search.id} is already {current.value}; "
                       f"it cannot become {status.value}")
    search.status, search.status_reason = status.value, reason
    now = utcnow()
    if status.is_terminal:
        search.ended_at = now
        revoke_search_tokens(session, search.id)
    session.add(HyperSearchEvent(hyper_search_id=search.id, status=status.value, reason=reason,
                                 at=now))
    return True
