"""TensorBoard on runs: start (or reuse) the set's TensorBoard and hand out a one-time
browser login for it (the work is in server/tensorboard/)."""

from __future__ import annotations

from spellray.errors import NotFound, RunNotFound
from spellray.schemas import TensorBoard, TensorBoardRequest
from spellray.server import db
from spellray.server.auth import ADMIN, Principal
from spellray.server.browser_sessions import CODE_SECONDS, BrowserSessions
from spellray.server.context import ServerContext
from spellray.server.ownership import runs_seen, sees
from spellray.server.tensorboard.boards import PREFIX, Board, TensorBoards
from spellray.server.tensorboard.run_sets import resolve, run_set


class TensorBoardService:
    def __init__(self, ctx: ServerContext, boards: TensorBoards,
                 sessions: BrowserSessions) -> None:
        self.ctx = ctx
        self.boards = boards
        self.sessions = sessions

    def open(self, request: TensorBoardRequest, principal: Principal = ADMIN) -> TensorBoard:
        """Another owner's run or search is not there for ``principal`` (404)."""
        wanted = run_set(request.run_ids, request.search_id)
        with self.ctx.sessions() as session:
            for run_id in request.run_ids:
                if not runs_seen(session, principal.owners, [run_id]):
                    raise RunNotFound(f"there is no run {run_id}; spell ps lists the runs")
            search = session.get(db.HyperSearch, request.search_id) \
                if request.search_id is not None else None
            if search is not None and not sees(principal.owners, search.owner):
                raise NotFound(f"there is no search {request.search_id}; spell hyper list "
                               "lists them")
        board = self.boards.open(wanted, resolve(self.ctx, wanted))
        return _described(board).model_copy(update={
            "login_path": self.sessions.login_path(PREFIX, board.path,
                                                   user=principal.user_name),
            "expires_in": CODE_SECONDS})

    def list(self, owners: frozenset[str] | None = None) -> list[TensorBoard]:
        """The TensorBoards on runs ``owners`` all see (None: every one)."""
        with self.ctx.sessions() as session:
            return [_described(board) for board in self.boards.list()
                    if runs_seen(session, owners, board.run_ids)]


def _described(board: Board) -> TensorBoard:
    return TensorBoard(set_id=board.set_id, path=board.path, run_ids=board.run_ids,
                       active=board.active)
