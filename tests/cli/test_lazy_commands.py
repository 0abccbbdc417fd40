"""`spell` imports a command's module only when that command runs (cli/lazy_group.py): the
table it lists commands from must match the commands, and start-up must stay free of what a
command does not need. Module lists, not clocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from spellray.cli.app import SpellGroup, app
from spellray.cli.lazy_group import LazyGroup
from tests.helpers import RaylessServer

# Run in a fresh interpreter: what `spell ARGS` imported (not the names main() blocks with
# None), as JSON on the last line.
PROBE = """
import json, sys
sys.argv = ["spell", *json.loads(sys.argv[1])]
from spellray.cli.main import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))
"""

# Never needed to print help or to start a run from the CLI.
HEAVY = ("ray", "mlflow", "pyarrow", "fastapi", "sqlalchemy", "boto3", "spellray.server",
         "spellray.tune", "spellray.cluster.launcher")


def imported_by(args: list[str], env: dict[str, str] | None = None,
                cwd: Path | None = None) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(f"{package}."))


def test_help_imports_no_typer_and_no_command() -> None:
    modules = imported_by(["--help"])
    for package in (*HEAVY, "typer", "pydantic", "pydantic_settings", "httpx", "rich",
                    "spellray.client", "spellray.schemas", "spellray.settings"):
        assert not loaded(modules, package), f"spell --help imported {package}"
    command_modules = {entry.module for entry in SpellGroup.lazy.values()}
    assert not command_modules & modules, command_modules & modules


# typer's own help for the root, in a process of its own (as a user's terminal gets it).
TYPERS_HELP = """
import sys
sys.argv = ["spell", "--help"]
from spellray.cli.app import app
app()
"""


@pytest.mark.parametrize("columns", ["200", "80", "60"])
def test_help_without_typer_is_typers_help(columns: str) -> None:
    env = {**os.environ, "COLUMNS": columns}  # click's width and ours read the same terminal
    typers = subprocess.run([sys.executable, "-c", TYPERS_HELP], capture_output=True,
                            text=True, timeout=120, env=env)
    ours = subprocess.run([sys.executable, "-m", "spellray.cli.main", "--help"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert typers.returncode == 0 and ours.returncode == 0, typers.stderr + ours.stderr
    assert "Commands:" in typers.stdout and ours.stdout == typers.stdout


def test_run_imports_only_what_a_run_needs(rayless_server: RaylessServer,
                                           tmp_path: Path) -> None:
    # The rayless server refuses to start it, after everything the CLI does before.
    (tmp_path / "train.py").write_text("print('hi')\n")
    modules = imported_by(["run", "-b", "python train.py"], env=rayless_server.env,
                          cwd=tmp_path)
    assert "spellray.client.runs" in modules  # the probe did get as far as the client
    for package in HEAVY:
        assert not loaded(modules, package), f"spell run imported {package}"
    others = {entry.module for entry in SpellGroup.lazy.values()} - {"spellray.cli.runs"}
    assert not others & modules, f"spell run imported other commands: {others & modules}"
    for unneeded in ("spellray.client.hyper", "spellray.client.model_servers",
                     "spellray.schemas.hyper", "spellray.schemas.model_servers",
                     "spellray.schemas.metrics", "httpx._main"):
        assert unneeded not in modules, f"spell run imported {unneeded}"


def _real_commands(module_name: str, sub_app: str | None,
                   name: str) -> dict[str, typer.core.TyperCommand]:
    module = __import__(module_name, fromlist=["_"])
    holder = typer.Typer()
    holder.callback()(lambda: None)
    if sub_app is None:
        module.register(holder)
    else:
        holder.add_typer(getattr(module, sub_app), name=name)
    return typer.main.get_command(holder).commands  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(SpellGroup.lazy))
def test_each_summary_is_the_commands_own_help(name: str) -> None:
    entry = SpellGroup.lazy[name]
    command = _real_commands(entry.module, entry.sub_app, name)[name]
    first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
    assert entry.summary == first_paragraph


def test_every_registered_command_is_in_the_table() -> None:
    registering = {entry.module for entry in SpellGroup.lazy.values() if entry.sub_app is None}
    for module_name in registering:
        names = set(_real_commands(module_name, None, "")) - {""}
        assert names <= set(SpellGroup.lazy), f"{module_name} adds {names - set(SpellGroup.lazy)}"


def test_a_command_loads_as_the_real_one() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    ctx = typer.Context(group)
    run = group.get_command(ctx, "run")
    assert run is not None and any(p.name == "machine_type" for p in run.params)
    # Its module's siblings came along; the listing still keeps the table's order.
    assert "ps" in group.commands and group.list_commands(ctx) == list(SpellGroup.lazy)
    assert group.get_command(ctx, "no-such-command") is None
