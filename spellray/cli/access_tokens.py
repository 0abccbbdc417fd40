"""spell access-tokens create | list | delete: your named tokens for scripts and CI."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer

from spellray.cli.output import ago, console

app = typer.Typer(help="Your access tokens for scripts and CI: create (shown once), list, "
                  "delete.", no_args_is_help=True)


def parse_days(text: str) -> float:
    from spellray.errors import InvalidInput
    from spellray.schemas.users import MAX_EXPIRES_DAYS

    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not 0 < days <= MAX_EXPIRES_DAYS:  # also false for nan and inf
        raise InvalidInput(f"bad --expires {text!r}: give a number of days above 0 and at "
                           f"most {MAX_EXPIRES_DAYS}, e.g. --expires 30")
    return days


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    expired = " (expired)" if moment <= datetime.now(timezone.utc) else ""
    return f"{moment:%Y-%m-%d %H:%M} UTC{expired}"


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="a name you will know it by (letters, digits, '.', '_', '-')")],  # noqa: E501
    expires: Annotated[str | None, typer.Option("--expires", metavar="DAYS", help="days until it stops working (default: never)")] = None,  # noqa: E501
) -> None:
    """Make an access token and print it (shown this once)."""
    from spellray.client import from_environment

    days = parse_days(expires) if expires is not None else None
    made = from_environment().access_tokens.create(name, expires_days=days)
    console.print(f"access token {made.name} (expires: {_when(made.expires_at)}); shown "
                  "once, keep it now:", markup=False)
    console.print(made.token, markup=False)


@app.command("list")
def list_tokens() -> None:
    """Your access tokens: name, created, last used, expires (never the secret)."""
    from rich.table import Table

    from spellray.client import from_environment

    table = Table("NAME", "CREATED", "LAST USED", "EXPIRES", box=None)
    for token in from_environment().access_tokens.list():
        table.add_row(token.name, ago(token.created_at), ago(token.last_used_at),
                      _when(token.expires_at))
    console.print(table)


@app.command()
def delete(name: Annotated[str, typer.Argument(help="the token's name")]) -> None:
    """Delete an access token: it is refused from now on."""
    from spellray.client import from_environment

    from_environment().access_tokens.delete(name)
    console.print(f"deleted access token {name}", markup=False)
