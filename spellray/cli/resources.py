"""spell ls, cp, upload, rm, link, unlink: the storage tree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli.output import ago, console, err

if TYPE_CHECKING:
    from spellray.client import Client


def _client() -> Client:
    from spellray.client import from_environment

    return from_environment()


def _size(size: int, human: bool) -> str:
    if not human:
        return str(size)
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return str(size)


@contextmanager
def _progress(what: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar with bytes and rate on a terminal; nothing when output is piped."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=not err.is_terminal, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def ls(
    path: Annotated[str, typer.Argument(help="runs/42, uploads/name, public/..., or a link")] = "",
    human: Annotated[bool, typer.Option("-h", "--human-readable", help="Sizes in K, M, G")] = False,
) -> None:
    """List the storage tree: runs, uploads, public data sets and links."""
    listing = _client().resources.ls(path)
    for entry in listing.entries:
        name = entry.name + ("/" if entry.is_dir else "")
        if entry.link_to:
            name = f"{entry.name} -> {entry.link_to}"
        size = "-" if entry.is_dir or entry.link_to else _size(entry.size, human)
        console.print(f"{size:>10}  {ago(entry.modified):>12}  {name}", markup=False)


def cp(
    source: Annotated[str, typer.Argument(help="A file or folder in storage (or a link)")],
    local_dir: Annotated[Path, typer.Argument(help="Local folder to copy into")] = Path("."),
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite local files")] = False,
) -> None:
    """Copy a file or folder out of storage: spell cp runs/42/model ."""
    resources = _client().resources
    plan = resources.plan_copy(source, local_dir, force)
    total = sum(entry.size for entry, _ in plan)
    with _progress(f"copying {source}", total) as advance:
        copied = resources.copy(plan, advance)
    err.print(f"copied {len(plan)} file(s), {_size(copied, True)}, to {local_dir}")


def upload(
    path: Annotated[Path, typer.Argument(help="A local file or folder")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Name under uploads/")] = None,
    compress: Annotated[bool, typer.Option("--compress", "-c", help="gzip in transit")] = False,
) -> None:
    """Upload a file or folder to uploads/NAME."""
    from spellray.client.resources import plan_upload

    plan = plan_upload(path)  # a bad source fails here, before any server starts
    total = sum(source.stat().st_size for source, _ in plan)
    with _progress(f"uploading {path}", total) as advance:
        target = _client().resources.upload(path, name, compress, advance, plan)
    console.print(f"uploaded {_size(total, True)} to {target}")


def rm(
    resources: Annotated[list[str], typer.Argument(help="uploads/NAME (only uploads)")],
) -> None:
    """Remove uploads (runs keep their outputs; public/ is read-only)."""
    client = _client()
    for resource in resources:
        console.print(f"removed {client.resources.rm(resource)}")


def link(
    alias: Annotated[str | None, typer.Argument(help="The link's name")] = None,
    path: Annotated[str | None, typer.Argument(help="The resource it names")] = None,
) -> None:
    """List links, show one, or create one: spell link best-model runs/42/model."""
    links = _client().links
    if alias is None:
        for item in links.list():
            console.print(f"{item.alias} -> {item.path}", markup=False)
        return
    shown = links.get(alias) if path is None else links.create(alias, path)
    console.print(f"{shown.alias} -> {shown.path}", markup=False)


def unlink(alias: Annotated[str, typer.Argument(help="The link to remove")]) -> None:
    """Remove a link (the resource it names stays)."""
    _client().links.delete(alias)
    console.print(f"removed link {alias}")


def register(app: typer.Typer) -> None:
    for command in (ls, cp, upload, rm, link, unlink):
        app.command()(command)
