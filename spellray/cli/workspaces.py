"""`spell jupyter`: Spell's workspaces (a Jupyter server on the cluster). Not built yet
(issue 18); until then the command accepts Spell's flags and says so, in one line, with what
to use meanwhile."""

from __future__ import annotations

from typing import Annotated

import typer

from spellray.errors import SpellrayError


class NotBuiltYet(SpellrayError):
    """A Spell command whose spellray side does not exist yet (CLI only: never on the wire)."""

    code = "not_built_yet"


def jupyter(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The workspace's name")] = None,
    lab: Annotated[bool, typer.Option("--lab", help="JupyterLab")] = False,
    notebook: Annotated[bool, typer.Option("--notebook", help="The classic notebook")] = False,
) -> None:
    """Workspaces (Jupyter on the cluster): not built yet; says what to use meanwhile."""
    # Spell's other options (-t, -m, --pip, timeouts, ...) are accepted, and equally unused.
    raise NotBuiltYet("spell jupyter: workspaces are not built yet in spellray; meanwhile "
                      "run Jupyter on your machine (pip install jupyterlab && jupyter lab) "
                      "and send work to the cluster with spell run or spellray.client")


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_extra_args": True,
                                  "ignore_unknown_options": True})(jupyter)
