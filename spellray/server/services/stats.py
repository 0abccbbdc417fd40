"""A run's hardware stats (spell stats): the samples its runner keeps in the run's .spell/
folder in storage (runner/stats_recorder.py says why there), read from a byte offset, so a
follower asks only for what is new. Long-polled like the log."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import select

from spellray.errors import RunNotFound
from spellray.schemas import RunStatus
from spellray.schemas.stats import STATS_FILE, StatsChunk, StatsSample
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.services.long_poll import long_poll
from spellray.storage.paths import join

# The most a request waits for a new sample, and how often it looks meanwhile: samples come
# every few seconds, so there is no point looking as often as the log does.
MAX_WAIT = 30.0
POLL_INTERVAL = 0.25
# The most one answer holds: a week-long run's file is tens of MB; readers ask again.
MAX_BYTES = 4 * 1024 * 1024


def stats_path(run_id: int) -> str:
    return join("runs", run_id, ".spell", STATS_FILE)


class StatsService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def chunk(self, run_id: int, offset: int, wait: float = 0) -> StatsChunk:
        """The samples from byte ``offset`` on. With ``wait``, hold the request until there
        is a new sample or the run ends."""
        return long_poll(lambda: self._chunk(run_id, offset),
                         lambda chunk: bool(chunk.samples or chunk.finished),
                         min(wait, MAX_WAIT), POLL_INTERVAL)

    def _chunk(self, run_id: int, offset: int) -> StatsChunk:
        # The status first: a run that is terminal has its whole file in storage already
        # (the runner closes it before it reports the end).
        with self.ctx.sessions() as session:
            status = session.scalar(select(db.Run.status).where(db.Run.id == run_id))
        if status is None:
            raise RunNotFound(f"there is no run {run_id}; spell ps lists the runs")
        status = RunStatus(status)
        path = stats_path(run_id)
        size = self.ctx.storage.size(path) or 0
        data = self.ctx.storage.read_bytes(path, offset) if offset < size else b""
        data = data[:MAX_BYTES]
        data = data[: data.rfind(b"\n") + 1]  # whole lines only
        samples = []
        for line in data.splitlines():
            try:
                samples.append(StatsSample.model_validate_json(line))
            except ValidationError:  # a line cut short by a runner that died: skipped
                continue
        new_offset = offset + len(data)
        return StatsChunk(samples=samples, offset=new_offset, status=status,
                          finished=status.is_terminal and new_offset >= size)
