"""`spell`'s typer application: the root group, whose commands load on first use from
cli/commands.py's table (see cli/lazy_group.py). cli/main.py imports this only when a
command runs: `spell --help` never needs typer (cli/root_help.py)."""

from __future__ import annotations

from typing import ClassVar

import typer

from spellray.cli.commands import COMMANDS, MAX_CONTENT_WIDTH, SPELL_HELP, Lazy
from spellray.cli.lazy_group import LazyGroup


class SpellGroup(LazyGroup):
    lazy: ClassVar[dict[str, Lazy]] = COMMANDS


app = typer.Typer(
    name="spell",
    cls=SpellGroup,
    help=SPELL_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help imports rich's markdown renderer, which alone is several
    # times Python's own start-up.
    rich_markup_mode=None,
    # Command summaries whole on a wide terminal (click cuts them to fit its 80 columns).
    context_settings={"max_content_width": MAX_CONTENT_WIDTH},
)


@app.callback()
def spell() -> None:
    """Run machine-learning work on a Ray cluster, the Spell way."""
