"""TensorBoard under /tensorboard/<set>/..., as a browser path (browser_sessions.py): the
API's admin tokens or a browser session let a request in; it then goes through the reverse
proxy to that set's TensorBoard, and counts as a use (the idle clock starts again)."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Scope

from spellray.errors import NotFound
from spellray.server.browser_sessions import VIEWER, BrowserPath
from spellray.server.ownership import runs_seen, viewer_owners
from spellray.server.tensorboard.boards import PREFIX, TensorBoards, start_failed


def _seen(state: Any, scope: Scope, run_ids: list[int]) -> bool:
    with state.ctx.sessions() as session:
        return runs_seen(session, viewer_owners(session, scope.get(VIEWER)), run_ids)


async def _tensorboard(scope: Scope, state: Any) -> ASGIApp:
    set_id = scope["path"].removeprefix(PREFIX).strip("/").split("/", 1)[0]
    boards: TensorBoards = state.tensorboards
    board = boards.get(set_id) if set_id else None
    if board is not None and not await run_in_threadpool(_seen, state, scope, board.run_ids):
        board = None  # another owner's runs: as if there were no such TensorBoard
    if board is None:
        minutes = boards.idle_seconds / 60
        raise NotFound(f"no TensorBoard {set_id!r} is running (one stops after {minutes:g} "
                       "idle minutes): spell tensorboard RUN [RUN...] opens one"
                       if set_id else "spell tensorboard RUN [RUN...] opens a TensorBoard")
    if why := board.exited():
        await run_in_threadpool(boards.forget, board)
        raise start_failed(board, why)
    boards.used(board)
    return partial(state.reverse_proxy, backend=board.backend,
                   unavailable=f"TensorBoard {set_id} is starting: try again in a moment")


TENSORBOARD = BrowserPath(
    prefix=PREFIX, backend=_tensorboard, command="spell tensorboard",
    refused="no token or a wrong one: browsers open the URL `spell tensorboard RUN` prints; "
            "programs send 'Authorization: Bearer <token>' (an admin token)")
