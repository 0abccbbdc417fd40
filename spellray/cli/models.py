"""spell model create | list | describe | download | rm."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spellray.cli.output import ago, console, err

if TYPE_CHECKING:
    from spellray.client import Client
    from spellray.schemas import Model

app = typer.Typer(help="Models: names and versions for run outputs and uploads.",
                  no_args_is_help=True)


def _client() -> Client:
    from spellray.client import from_environment

    return from_environment()


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (v1, v2, ... when not given)")],
    resource: Annotated[str, typer.Argument(help="runs/42/model, uploads/x, or a link")],
    file: Annotated[list[str], typer.Option("--file", "-f", help="PATH[:MOUNT_PATH]: only this file (or folder) of the resource is in the model, at MOUNT_PATH (default PATH) of its folder (/model); repeat for more")] = [],  # noqa: B006, E501
) -> None:
    """Make a model (version) of a resource: spell model create digits runs/42/model.

    With --file, only the files named are the model: spell model create cifar runs/16
    --file out/model.h5:model.h5."""
    model = _client().models.create(name, resource, files=file)
    console.print(f"model {model.name}:{model.version} -> {model.resource}", markup=False)
    for entry in model.files:
        console.print(f"  {entry.path} -> {entry.mount_path}", markup=False)


@app.command("list")
def list_models() -> None:
    """Every model version."""
    from rich.table import Table

    table = Table("NAME", "VERSION", "RESOURCE", "CREATED", box=None)
    for model in _client().models.list():
        table.add_row(model.name, model.version, model.resource, ago(model.created_at))
    console.print(table)


@app.command()
def describe(name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION")]) -> None:
    """A model's versions (or one version)."""
    client = _client()
    models = [client.models.get(name)] if ":" in name else client.models.versions(name)
    for model in models:
        files = ", ".join(f"{f.path}:{f.mount_path}" for f in model.files)
        console.print(f"{model.name}:{model.version}  {model.resource}  "
                      f"created {ago(model.created_at)}" + (f"  files {files}" if files else ""),
                      markup=False)


@app.command()
def download(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: the newest)")],
    dest: Annotated[Path, typer.Option("--destination", "-d", help="Local folder")] = Path("."),
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite local files")] = False,
) -> None:
    """Copy a model's files to a local folder, as spell cp does."""
    client = _client()
    model = client.models.get(name)
    plan = _files_plan(client, model, dest, force) if model.files else \
        client.resources.plan_copy(model.resource, dest, force)
    client.resources.copy(plan)
    err.print(f"copied {model.name}:{model.version} ({len(plan)} file(s)) to {dest}")


def _files_plan(client: Client, model: Model, dest: Path, force: bool) -> list[Any]:
    """A model made with --file: each file (or folder) at its MOUNT_PATH under ``dest``, as
    the model server's /model shows them."""
    from pathlib import PurePosixPath

    from spellray.errors import Conflict

    plan = []
    for entry in model.files:
        tree = client.resources.tree(f"{model.resource}/{entry.path}")
        for found in tree.entries:
            inner = PurePosixPath(found.path).relative_to(PurePosixPath(tree.path))
            plan.append((found, dest / entry.mount_path / inner if str(inner) != "."
                         else dest / entry.mount_path))
    clashes = [str(target) for _, target in plan if target.exists()]
    if clashes and not force:
        raise Conflict(f"{clashes[0]} exists (and {len(clashes) - 1} more); use -f to overwrite")
    return plan


@app.command("rm")
def remove(name: Annotated[str, typer.Argument(help="NAME:VERSION")]) -> None:
    """Remove a model version (its files stay where they are)."""
    from spellray.errors import InvalidInput

    if ":" not in name:
        raise InvalidInput(f"name the version to remove: spell model rm {name}:v1")
    model = _client().models.delete(name)
    console.print(f"removed model {model.name}:{model.version}", markup=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="model")
