"""spell project create | list | get | edit | add-runs | remove-runs | archive | unarchive,
and spell archive / unarchive RUN... (Spell's names). A run goes in a project with
`spell run -p NAME`; `spell ps -p NAME` lists a project's runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli.output import ago, console, err, styled_status

if TYPE_CHECKING:
    from spellray.client import Client

app = typer.Typer(help="Projects: groups of runs (each also an MLflow experiment).",
                  no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="The project's name")]
RunIds = Annotated[list[int], typer.Argument(help="Run numbers")]


def _client() -> Client:
    from spellray.client import from_environment

    return from_environment()


@app.command()
def create(name: Annotated[str, typer.Argument(help="letters, digits, '.', '_', '-'")],
           description: Annotated[str | None, typer.Option("--description", "-d")] = None
           ) -> None:
    """Create a project; start runs in it with spell run -p NAME."""
    project = _client().projects.create(name, description)
    console.print(f"created project {project.name}; start runs in it: spell run -p "
                  f"{project.name} ... · move runs in: spell project add-runs "
                  f"{project.name} RUN...", markup=False)


@app.command("list")
def list_projects(archived: Annotated[bool, typer.Option("--archived", help="The archived projects instead")] = False) -> None:  # noqa: E501
    """Projects, with how many runs each has."""
    from rich.table import Table

    projects = _client().projects.list(archived)
    owned = len({p.owner for p in projects}) > 1
    table = Table("NAME", *(["OWNER"] if owned else []), "RUNS", "DESCRIPTION", "CREATED",
                  box=None, header_style="bold")
    for p in projects:
        table.add_row(p.name, *([p.owner] if owned else []), str(p.run_count),
                      p.description or "", ago(p.created_at))
    console.print(table)


@app.command()
def get(name: Name,
        number: Annotated[int, typer.Option("--number", "-n", help="How many runs (0: all)")] = 50,
        ) -> None:
    """A project: its runs, newest first, and how many are in each status."""
    from rich.table import Table

    client = _client()
    project = client.projects.get(name)
    counts = " · ".join(f"{styled_status(status)} {count}"
                        for status, count in sorted(project.status_counts.items()))
    console.print(f"[bold]{project.name}[/]"
                  f"{' (archived)' if project.archived_at else ''} · owner {project.owner} · "
                  f"{project.run_count} run(s){': ' + counts if counts else ''}")
    if project.description:
        console.print(project.description, markup=False)
    listing = client.runs.list(number, project=name)
    table = Table("ID", "STATUS", "COMMAND", "CREATED", box=None, header_style="bold")
    for run in listing.runs:
        command = run.command if len(run.command) <= 60 else run.command[:57] + "…"
        table.add_row(str(run.id), styled_status(run.status.value), command, ago(run.created_at))
    console.print(table)
    if listing.total > len(listing.runs):
        err.print(f"[dim]{len(listing.runs)} of {listing.total} runs; -n 0 shows all[/]")


@app.command()
def edit(name: Name,
         new_name: Annotated[str | None, typer.Option("--name", help="Rename it (its MLflow experiment too)")] = None,  # noqa: E501
         description: Annotated[str | None, typer.Option("--description", "-d", help="A new description ('' clears it)")] = None,  # noqa: E501
         ) -> None:
    """Rename a project or change its description."""
    project = _client().projects.edit(name, new_name, description)
    console.print(f"project {project.name}: {project.description or '(no description)'}",
                  markup=False)


def _moved(moved: list[int], asked: list[int], where: str) -> None:
    stayed = [r for r in dict.fromkeys(asked) if r not in moved]
    text = f"moved {len(moved)} run(s) {where}"
    if stayed:
        text += f"; already there: {' '.join(map(str, stayed))}"
    console.print(text, markup=False)


@app.command("add-runs")
def add_runs(name: Name, run_ids: RunIds) -> None:
    """Move runs into a project (out of any other), with their MLflow runs."""
    _moved(_client().projects.add_runs(name, run_ids), run_ids, f"into {name}")


@app.command("remove-runs")
def remove_runs(name: Name, run_ids: RunIds) -> None:
    """Take runs out of a project: uncategorized again."""
    _moved(_client().projects.remove_runs(name, run_ids), run_ids, f"out of {name}")


@app.command("archive")
def archive_project(name: Name) -> None:
    """Archive a project: out of spell project list, and it takes no runs (its runs stay)."""
    _client().projects.archive(name)
    console.print(f"archived project {name}; spell project unarchive {name} undoes it",
                  markup=False)


@app.command("unarchive")
def unarchive_project(name: Name) -> None:
    """Unarchive a project."""
    _client().projects.unarchive(name)
    console.print(f"project {name} is back", markup=False)


def archive(run_ids: RunIds,
            quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing")] = False
            ) -> None:
    """Archive ended runs: out of spell ps, spell ls runs/, links and mounts (their files
    stay; spell cp still reads them)."""
    changed = _client().runs.archive(run_ids)
    if not quiet:
        console.print(f"archived {len(changed)} run(s); spell ps --archived lists them, "
                      "spell unarchive RUN... brings them back", markup=False)


def unarchive(run_ids: RunIds,
              quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing")] = False
              ) -> None:
    """Bring archived runs back."""
    changed = _client().runs.unarchive(run_ids)
    if not quiet:
        console.print(f"unarchived {len(changed)} run(s)", markup=False)


def register(root: typer.Typer) -> None:
    root.command()(archive)
    root.command()(unarchive)
