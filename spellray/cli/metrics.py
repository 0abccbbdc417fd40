"""spell metrics, spell ui: a run's metrics in the terminal, and MLflow's UI in a browser."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli import exit_codes
from spellray.cli.output import console, err
from spellray.cli.runs import _client

if TYPE_CHECKING:
    from rich.table import Table

    from spellray.client import Client
    from spellray.schemas import MetricValue

# Hand-written: no library spellray depends on draws sparklines (rich has none), and eight
# block characters are all it takes.
BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40
FOLLOW_POLL = 1.0


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """``values`` as one line of block characters, lowest ▁ to highest █. A series longer
    than ``width`` is averaged into ``width`` buckets; a flat one is a row of ▄."""
    if not values:
        return ""
    if len(values) > width:
        values = [sum(chunk) / len(chunk) for chunk in
                  (values[i * len(values) // width:(i + 1) * len(values) // width]
                   for i in range(width))]
    low, high = min(values), max(values)
    if high == low:
        return BARS[3] * len(values)
    top = len(BARS) - 1
    return "".join(BARS[round((v - low) / (high - low) * top)] for v in values)


# A text metric's value in the summary table: its start, on one line.
TEXT_WIDTH = 40


def _number(value: float | str | None) -> str:
    """A value as shown: a number to 6 significant digits, a text as it is, None blank."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return f"{value:.6g}"


def _short(value: float | str) -> str:
    text = _number(value).replace("\n", " ")
    return text if len(text) <= TEXT_WIDTH else text[:TEXT_WIDTH - 1] + "…"


def _numbers(values: Sequence[MetricValue]) -> list[float]:
    return [v.value for v in values if not isinstance(v.value, str)]


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def _summary_table(client: Client, run_id: int) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold")
    for column in ("NAME", "COUNT", "LAST", "MIN", "MAX", "TREND"):
        table.add_column(column, no_wrap=True, justify="right" if column in (
            "COUNT", "LAST", "MIN", "MAX") else "left")
    for item in client.metrics.list(run_id):
        trend = "" if item.kind == "text" else sparkline(
            _numbers(client.metrics.get(run_id, item.name).values))
        # Text(...): a name or a text value is shown as it is, never read as rich markup.
        table.add_row(Text(item.name), str(item.count), Text(_short(item.last)),
                      _number(item.min), _number(item.max), trend)
    return table


def _series_rows(values: Sequence[MetricValue]) -> list[str]:
    return [f"{v.index:>8}  {_number(v.value):>14}  {_when(v.time)}" for v in values]


def _run_ended(client: Client, run_id: int) -> bool:
    return client.runs.get(run_id).status.is_terminal


def _follow_series(client: Client, run_id: int, name: str) -> None:
    """Print values of ``name`` as they arrive, until the run ends."""
    from spellray.errors import NotFound

    shown = 0
    while True:
        ended = _run_ended(client, run_id)  # before reading: the last values are then in
        try:
            values = client.metrics.get(run_id, name).values
        except NotFound:
            values = []
        for row in _series_rows(values[shown:]):
            console.print(row, markup=False, highlight=False)
        shown = len(values)
        if ended:
            return
        time.sleep(FOLLOW_POLL)


def metrics(
    run_id: Annotated[int, typer.Argument(help="Run number")],
    name: Annotated[str | None, typer.Argument(help="A metric: show all its values")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep showing new values until the run ends")] = False,  # noqa: E501
) -> int:
    """Show a run's metrics: each one's count, last, min, max and trend; or one's values."""
    client = _client()
    if name is None and not follow:
        table = _summary_table(client, run_id)
        if table.row_count:
            console.print(table)
        else:
            err.print(f"run {run_id} has no metrics (yet); send them with "
                      "spell.metrics.send_metric (or spellray's) or mlflow.log_metric")
        return exit_codes.COMPLETE
    if name is None:
        from rich.live import Live

        with Live(_summary_table(client, run_id), console=console, auto_refresh=False) as live:
            while not _run_ended(client, run_id):
                time.sleep(FOLLOW_POLL)
                live.update(_summary_table(client, run_id), refresh=True)
            live.update(_summary_table(client, run_id), refresh=True)
        return exit_codes.COMPLETE
    if follow:
        console.print(f"{'INDEX':>8}  {'VALUE':>14}  TIME", style="bold")
        _follow_series(client, run_id, name)
        return exit_codes.COMPLETE
    values = client.metrics.get(run_id, name).values
    console.print(f"{name}  {sparkline(_numbers(values))}  "
                  f"({len(values)} values)", highlight=False, markup=False)
    console.print(f"{'INDEX':>8}  {'VALUE':>14}  TIME", style="bold")
    for row in _series_rows(values):
        console.print(row, markup=False, highlight=False)
    return exit_codes.COMPLETE


def _browser_available() -> bool:
    """Whether a graphical browser can open here: never a text browser in this terminal."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def ui(
    run_id: Annotated[int | None, typer.Argument(help="Open this run's page")] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="Open MLflow's UI instead")] = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the URL")] = False,
) -> None:
    """Open the web console (or MLflow's UI) in a browser, logged in."""
    client = _client()
    url = client.metrics.ui_url(run_id) if mlflow else client.console.login_url(run_id)
    if not no_browser and _browser_available():
        import webbrowser

        if webbrowser.open(url, new=2):
            what = "MLflow's UI" if mlflow else "the console"
            err.print(f"Opened {what} in your browser; if it did not show, open:")
    console.print(url)
    err.print("[dim]The link logs a browser in once, within 2 minutes; spell ui makes a new "
              "one.[/]")


def register(app: typer.Typer) -> None:
    app.command()(metrics)
    app.command()(ui)
