"""spell teams create | add | list (admins make teams and add members), and spell owner
[NAME]: which owner (your own name or one of your teams) what you make belongs to. The
choice is kept per server in SPELLRAY_HOME/logins.json (client/logins.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from spellray.cli.output import ago, console

app = typer.Typer(help="Teams: create one and add members (admins only), list them.",
                  no_args_is_help=True)


@app.command()
def create(name: Annotated[str, typer.Argument(help="lowercase letters, digits, '.', '_', '-' (not a user's name)")]) -> None:  # noqa: E501
    """Create a team (admins only)."""
    from spellray.client import from_environment

    team = from_environment().teams.create(name)
    console.print(f"created team {team.name}; add members with: spell teams add {team.name} "
                  "USER", markup=False)


@app.command()
def add(name: Annotated[str, typer.Argument(help="the team")],
        user: Annotated[str, typer.Argument(help="the user to add")]) -> None:
    """Add a user to a team (admins only)."""
    from spellray.client import from_environment

    team = from_environment().teams.add(name, user)
    console.print(f"{user} is in team {team.name} ({', '.join(team.members)})", markup=False)


@app.command("list")
def list_teams() -> None:
    """Teams and their members (a member sees their own teams)."""
    from rich.table import Table

    from spellray.client import from_environment

    table = Table("NAME", "MEMBERS", "CREATED", box=None)
    for team in from_environment().teams.list():
        table.add_row(team.name, ", ".join(team.members), ago(team.created_at))
    console.print(table)


def owner(name: Annotated[str | None, typer.Argument(help="your user name or one of your teams (none: list them)")] = None) -> None:  # noqa: E501
    """List the owners you may use, the active one marked *; with NAME, make it the active
    one: what you make from now on (runs, uploads, models, ...) is that owner's."""
    from spellray.client import from_environment, logins
    from spellray.settings import get_settings

    client = from_environment()
    if name is None:
        for item in client.teams.owners():
            mark = "*" if item.active else " "
            console.print(f"{mark} {item.name} ({item.kind})", markup=False)
        return
    me = client.teams.use_owner(name)  # the server refuses an owner this user may not use
    settings = get_settings()
    place = logins.current_place(settings)
    logins.set_owner(settings.home, place.key, None if name == me.user else name)
    console.print(f"active owner: {name}", markup=False)


def register(root: typer.Typer) -> None:
    root.command()(owner)
