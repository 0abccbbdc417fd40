"""`spell --help` without typer. typer's import alone is about 3x Python's own start-up,
and the root help is only the command table (cli/commands.py) laid out: click's own
formatter lays it out here exactly as typer's group would (tests/cli/test_lazy_commands.py
compares the two), at the cost of importing click alone."""

from __future__ import annotations

from click.formatting import HelpFormatter

from spellray.cli.commands import COMMANDS, MAX_CONTENT_WIDTH, SPELL_HELP


def root_help() -> str:
    """What `spell --help` prints (typer's group help: usage, description, options,
    commands), for the terminal's width."""
    formatter = HelpFormatter(max_width=MAX_CONTENT_WIDTH)
    formatter.write_usage("spell", "[OPTIONS] COMMAND [ARGS]...")
    formatter.write_paragraph()
    with formatter.indentation():
        formatter.write_text(SPELL_HELP)
    with formatter.section("Options"):
        formatter.write_dl([("--help", "Show this message and exit.")])
    with formatter.section("Commands"):
        formatter.write_dl([(name, entry.summary) for name, entry in COMMANDS.items()])
    return formatter.getvalue()
