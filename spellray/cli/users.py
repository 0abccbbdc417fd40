"""spell users add | list (admins add users; each gets a one-time login token)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from spellray.cli.output import ago, console

app = typer.Typer(help="Users of this server: add one (admins only), list them.",
                  no_args_is_help=True)


def read_password(confirm: bool) -> str:
    """Asked twice on a terminal (once with ``confirm`` false); else the first line of
    standard input, so scripts can pipe it in without it showing in `ps`."""
    from spellray.errors import InvalidInput

    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidInput("no password on standard input: pipe one in (echo P | spell ...), "
                           "or run this in a terminal to be asked")
    return password


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="lowercase letters, digits, '.', '_', '-'")],
    admin: Annotated[bool, typer.Option("--admin", help="an admin (may add users)")] = False,
    password: Annotated[bool, typer.Option("--password", help="give them a password too (asked twice; read from standard input when it is not a terminal), for spell login --identity NAME --password P")] = False,  # noqa: E501
) -> None:
    """Add a user and print their one-time login token (admins only)."""
    from spellray.client import from_environment
    from spellray.errors import InvalidInput
    from spellray.schemas.users import validate_password, validate_user_name

    try:  # before asking for a password, and before any request
        validate_user_name(name)
        secret = validate_password(read_password(confirm=True)) if password else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    created = from_environment().users.add(name, admin=admin, password=secret)
    console.print(f"added {created.user.name} ({created.user.role}). Their one-time login "
                  f"token, shown once, good for one login until "
                  f"{created.login_token_expires_at:%Y-%m-%d %H:%M} UTC:")
    console.print(created.login_token)
    console.print(f"they log in with: spell login --token {created.login_token} "
                  "[--server URL]")


@app.command("list")
def list_users() -> None:
    """Every user: name, role, whether they have a password, when added."""
    from rich.table import Table

    from spellray.client import from_environment

    table = Table("NAME", "ROLE", "PASSWORD", "ADDED", box=None)
    for user in from_environment().users.list():
        table.add_row(user.name, user.role, "yes" if user.has_password else "no",
                      ago(user.created_at))
    console.print(table)
