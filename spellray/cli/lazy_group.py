"""A typer group that imports a command's module only when that command runs: `spell run`
loads the runs module, not the cluster launcher's or the model servers' (and their imports),
and `spell --help` loads none, printing each command's summary from the table."""

from __future__ import annotations

import importlib
from difflib import get_close_matches
from typing import Any, ClassVar

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup

from spellray.cli.commands import Lazy


def _group_callback() -> None:
    """Only so that typer makes a group of however many commands a module registers."""


class LazyGroup(TyperGroup):
    lazy: ClassVar[dict[str, Lazy]] = {}  # name -> where it lives, in `spell --help` order
    _listing = False

    def list_commands(self, ctx: _click.Context) -> list[str]:
        loaded = [name for name in super().list_commands(ctx) if name not in self.lazy]
        return [*self.lazy, *loaded]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        entry = self.lazy[cmd_name]
        if self._listing:  # the group's help needs the summary only
            # short_help: shown whole (wrapped), as rich help showed it, not cut at 45 chars.
            return TyperCommand(cmd_name, short_help=entry.summary)
        self._load(entry, cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: _click.Context,
                        args: list[str]) -> tuple[str | None, _click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except _click.exceptions.UsageError as exc:
            # typer suggests among the commands built so far; here that is none of them.
            matches = get_close_matches(args[0], self.lazy) if args else []
            if matches and self.suggest_commands and "Did you mean" not in exc.message:
                names = ", ".join(repr(name) for name in matches)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {names}?"
            raise

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> Any:
        self._listing = True
        try:
            return super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def _load(self, entry: Lazy, cmd_name: str) -> None:
        module = importlib.import_module(entry.module)
        # Built the way typer builds the root, with the root's settings.
        holder = typer.Typer(rich_markup_mode=self.rich_markup_mode, add_completion=False,
                             pretty_exceptions_enable=False)
        holder.callback()(_group_callback)
        if entry.sub_app is None:
            module.register(holder)
        else:
            holder.add_typer(getattr(module, entry.sub_app), name=cmd_name)
        built = typer.main.get_command(holder)
        assert isinstance(built, TyperGroup)
        # A module's siblings (runs: run, ps, info, ...) come along: keep them all.
        self.commands.update({name: command for name, command in built.commands.items()
                              if name in self.lazy})
