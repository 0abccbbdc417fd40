"""TensorBoard on runs: start (or reuse) the set's TensorBoard and hand out a one-time
browser login for it (the work is in server/tensorboard/)."""

from __future__ import annotations

from spellray.schemas import TensorBoard, TensorBoardRequest
from spellray.server.browser_sessions import CODE_SECONDS, BrowserSessions
from spellray.server.context import ServerContext
from spellray.server.tensorboard.boards import PREFIX, Board, TensorBoards
from spellray.server.tensorboard.run_sets import resolve, run_set


class TensorBoardService:
    def __init__(self, ctx: ServerContext, boards: TensorBoards,
                 sessions: BrowserSessions) -> None:
        self.ctx = ctx
        self.boards = boards
        self.sessions = sessions

    def open(self, request: TensorBoardRequest) -> TensorBoard:
        wanted = run_set(request.run_ids, request.search_id)
        board = self.boards.open(wanted, resolve(self.ctx, wanted))
        return _described(board).model_copy(update={
            "login_path": self.sessions.login_path(PREFIX, board.path),
            "expires_in": CODE_SECONDS})

    def list(self) -> list[TensorBoard]:
        return [_described(board) for board in self.boards.list()]


def _described(board: Board) -> TensorBoard:
    return TensorBoard(set_id=board.set_id, path=board.path, run_ids=board.run_ids,
                       active=board.active)
