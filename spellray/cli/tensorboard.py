"""spell tensorboard: TensorBoard on runs (or a search's trials) in a browser, logged in."""

from __future__ import annotations

from typing import Annotated

import typer

from spellray.cli.metrics import _browser_available
from spellray.cli.output import console, err
from spellray.cli.runs import _client


def tensorboard(
    runs: Annotated[list[int] | None, typer.Argument(help="Run numbers", show_default=False)] = None,  # noqa: E501
    search: Annotated[int | None, typer.Option("--search", help="Every trial of this search")] = None,  # noqa: E501
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the URL")] = False,
) -> None:
    """Open TensorBoard on runs (named by number) in a browser, logged in."""
    from spellray.errors import InvalidInput

    if not runs and search is None:
        raise InvalidInput("name runs (spell tensorboard 12 13) or a search (--search 4)")
    client = _client()
    board = client.tensorboard.open(runs or (), search_id=search)
    url = client.tensorboard.login_url(board)
    if not no_browser and _browser_available():
        import webbrowser

        if webbrowser.open(url, new=2):
            err.print("Opened TensorBoard in your browser; if it did not show, open:")
    console.print(url, markup=False, highlight=False)
    err.print(f"[dim]Runs {', '.join(map(str, board.run_ids))}"
              f"{' (still running: refreshed as they go)' if board.active else ''}. The link "
              "logs a browser in once, within 2 minutes; spell tensorboard makes a new one.[/]")


def register(app: typer.Typer) -> None:
    app.command()(tensorboard)
