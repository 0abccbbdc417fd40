"""The SDK's TensorBoard side: ``client.tensorboard.open([3, 5])`` (or ``search_id=``) has
the server run TensorBoard on those runs, each named by its number, and returns once it
answers; ``login_url`` is a one-time link that logs a browser in to it."""

from __future__ import annotations

import time
from collections.abc import Sequence

from spellray.client._http import ResourceGroup
from spellray.errors import ServerUnavailable
from spellray.schemas import TensorBoard, TensorBoardRequest

WAIT_POLL = 0.5


class TensorBoards(ResourceGroup):
    def open(self, run_ids: Sequence[int] = (), search_id: int | None = None,
             wait: bool = True, timeout: float = 120) -> TensorBoard:
        """Start (or reuse) the TensorBoard of runs ``run_ids``, or of every trial of search
        ``search_id``; with ``wait``, return once it answers."""
        body = TensorBoardRequest(run_ids=list(run_ids), search_id=search_id)
        board = TensorBoard.model_validate(
            self._api.request("POST", "/api/tensorboards", json=body.model_dump()))
        if wait:
            self.wait(board, timeout)
        return board

    def wait(self, board: TensorBoard, timeout: float = 120) -> None:
        """Return once ``board``'s TensorBoard answers through the server."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._api.request("GET", f"{board.path}data/environment")
                return
            except ServerUnavailable:  # still starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(WAIT_POLL)

    def login_url(self, board: TensorBoard) -> str:
        """The one-time URL (two minutes) that logs a browser in and opens the board."""
        return self._api.url + board.login_path

    def list(self) -> list[TensorBoard]:
        """The TensorBoards the server runs now."""
        return [TensorBoard.model_validate(item)
                for item in self._api.request("GET", "/api/tensorboards")]
