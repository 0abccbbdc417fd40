"""TensorBoard on runs (spell tensorboard): what to open, and where it is."""

from __future__ import annotations

from pydantic import Field

from spellray.schemas.base import DbId, Schema


class TensorBoardRequest(Schema):
    """Runs to show together, or every trial of a search (not both)."""

    run_ids: list[DbId] = Field(default_factory=list, max_length=1000)
    search_id: DbId | None = None


class TensorBoard(Schema):
    """A TensorBoard the server runs; ``login_path`` (one-time, ``expires_in`` seconds) logs a
    browser in and opens it at ``path``."""

    set_id: str
    path: str
    run_ids: list[int]
    active: bool  # any run still going: its mirror is being refreshed
    login_path: str = ""
    expires_in: int = 0
