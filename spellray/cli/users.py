"""spell users add | list (admins add users; each gets a one-time login token)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli.output import ago, console

if TYPE_CHECKING:
    from spellray.schemas import UserCreated

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
    _show(f"added {created.user.name} ({created.user.role})", created)


@app.command("login-token")
def login_token(name: Annotated[str, typer.Argument(help="the user's name")]) -> None:
    """Print a new one-time login token for a user, when theirs was lost or expired (admins
    only)."""
    from spellray.client import from_environment

    _show(f"a new login token for {name}", from_environment().users.login_token(name))


def _show(what: str, created: UserCreated) -> None:
    console.print(f"{what}. Their one-time login token, shown once, good for one login "
                  f"until {created.login_token_expires_at:%Y-%m-%d %H:%M} UTC:", markup=False)
    console.print(created.login_token, markup=False)
    console.print(f"they log in with: spell login --token {created.login_token} "
                  "[--server URL]", markup=False)


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
