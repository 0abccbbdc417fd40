"""`spell jupyter NAME` and `spell workspaces`: Spell's workspaces, Jupyter on the cluster
with this folder's code, the run's mounts and environment, opened in a browser through the
spellray server (services/workspaces.py, runner/jupyter.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli import run_flags as flags
from spellray.cli.output import ago, console, duration, err, styled_status

if TYPE_CHECKING:
    from spellray.schemas import Workspace

# `spell jupyter` flags that are run options, and the RunRequest field each sets: the ones
# the user gave are compared with a running workspace's.
_RUN_FIELDS = {"machine_type": "machine_type", "mount": "mounts", "env": "env",
               "pip": "environment", "pip_req": "environment", "apt": "environment",
               "conda_file": "environment", "docker_image": "environment",
               "framework": "environment", "project": "project"}


def jupyter(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The workspace's name")],
    notebook: Annotated[bool, typer.Option("--notebook", help="The classic notebook UI instead of JupyterLab")] = False,  # noqa: E501
    lab: Annotated[bool, typer.Option("--lab", help="JupyterLab (the default)")] = False,
    idle_kernel_timeout: Annotated[int | None, typer.Option("--idle-kernel-timeout", min=0, help="Seconds before an idle kernel is shut down (0: never; default 1800)")] = None,  # noqa: E501
    no_activity_timeout: Annotated[int | None, typer.Option("--no-activity-timeout", min=0, help="Seconds with no kernel and no activity before the workspace stops, saved (0: never; default 1800)")] = None,  # noqa: E501
    machine_type: Annotated[str | None, typer.Option("--machine-type", "-t", help="Machine type (default CPU)")] = None,  # noqa: E501
    mount: flags.Mounts = [],  # noqa: B006
    pip: flags.Pip = [],  # noqa: B006
    pip_req: flags.PipReq = None,
    apt: flags.Apt = [],  # noqa: B006
    conda_file: flags.CondaFile = None,
    docker_image: flags.DockerImage = None,
    framework: flags.Framework = None,
    env: flags.Env = [],  # noqa: B006
    commit_ref: flags.CommitRef = None,
    github_url: flags.GithubUrl = None,
    github_ref: flags.GithubRef = None,
    project: flags.Project = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the link")] = False,
) -> None:
    """Start a workspace (JupyterLab on the cluster, with this folder's code) and open it."""
    from typer._click.core import ParameterSource

    from spellray.cli.runs import _client, pairs
    from spellray.client.environment import build_environment
    from spellray.errors import InvalidInput
    from spellray.schemas import WorkspaceOptions, validate_workspace_name

    try:
        validate_workspace_name(name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if notebook and lab:
        raise InvalidInput("--notebook and --lab pick the UI: give one")
    if commit_ref and github_url:
        raise InvalidInput("-c/--commit-ref picks a commit of the local repository; with "
                       "--github-url use --github-ref")
    given = sorted({field for option, field in _RUN_FIELDS.items()
                    if ctx.get_parameter_source(option) == ParameterSource.COMMANDLINE})
    client = _client()
    code = None
    if not github_url:
        code = client.runs.upload_code(Path.cwd(), commit_ref=commit_ref)
    run = client.runs.build_request(
        "jupyter lab", machine_type=machine_type or "CPU", env=pairs(env, "-e"), code=code,
        code_dir=None, mounts=mount, github_url=github_url, github_ref=github_ref,
        project=project,
        environment=build_environment(pip, pip_req, apt, conda_file, docker_image, framework))
    options = WorkspaceOptions(notebook=True if notebook else False if lab else None,
                               idle_kernel_timeout=idle_kernel_timeout,
                               no_activity_timeout=no_activity_timeout)
    workspace = client.workspaces.open(name, run, options, given)
    if workspace.status.value != "running":
        err.print(f"[dim]workspace {name}: run {workspace.run_id}, "
                  f"{workspace.options_text}[/]")

        def said(item: Workspace) -> None:
            reason = f" ({item.status_reason})" if item.status_reason else ""
            err.print(f"[dim]workspace {name} is {item.status.value}{reason}[/]")

        workspace = client.workspaces.wait(name, on_status=said)
    url = client.workspaces.login_url(name)
    _open(url, no_browser)
    console.print(url, markup=False, highlight=False)
    err.print(f"[dim]The link logs a browser into workspace {name} once, within 2 minutes; "
              f"spell jupyter {name} makes a new one. spell workspaces stop {name} saves "
              "and stops it.[/]")


def _open(url: str, no_browser: bool) -> None:
    from spellray.cli.metrics import _browser_available

    if not no_browser and _browser_available():
        import webbrowser

        if webbrowser.open(url, new=2):
            err.print("Opened the workspace in your browser; if it did not show, open:")


app = typer.Typer(help="Workspaces: list them (the default), stop one (saving it), remove "
                       "one.", invoke_without_command=True)


@app.callback()
def workspaces(ctx: typer.Context) -> None:
    """Workspaces: list them (the default), stop one (saving it), remove one."""
    if ctx.invoked_subcommand is None:
        list_workspaces()


@app.command("list")
def list_workspaces() -> None:
    """List workspaces: name, status, machine type, started, idle for, link (a browser
    logged in by `spell jupyter NAME` opens it)."""
    from rich.table import Table

    from spellray.cli.runs import _client

    client = _client()
    items = client.workspaces.list()
    if not items:
        err.print("[dim]no workspaces yet: spell jupyter NAME makes one[/]")
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "STATUS", "MACHINE", "STARTED", "IDLE FOR", "LINK"):
        table.add_column(column, no_wrap=column != "LINK", overflow="fold")
    for item in items:
        # Why it ended, unless the user stopped it (the common case says nothing new).
        reason = item.status_reason if item.status_reason != "stopped by user" else None
        status = styled_status(item.status.value) + (f" [dim]({reason})[/]" if reason else "")
        link = client.url + item.path if item.status.value == "running" else "-"
        table.add_row(item.name, status, item.machine_type, ago(item.started_at),
                      duration(item.idle_seconds), link)
    console.print(table)


@app.command()
def stop(name: Annotated[str, typer.Argument(help="The workspace's name")]) -> None:
    """Stop a workspace: Jupyter ends and its folder is saved to workspaces/NAME/."""
    from spellray.cli.runs import _client

    workspace = _client().workspaces.stop(name)
    console.print(f"workspace {name} is {workspace.status.value}; its folder is saved to "
                  f"workspaces/{name}/ as it stops")


@app.command()
def rm(name: Annotated[str, typer.Argument(help="The workspace's name")],
       force: flags.Force = False) -> None:
    """Remove a stopped workspace: its record and its saved folder."""
    from spellray.cli.runs import _client
    from spellray.errors import InvalidInput

    client = _client()
    client.workspaces.get(name)  # a name that is no workspace says so before any prompt
    if not force and not typer.confirm(f"Remove workspace {name} and its saved files "
                                       f"(workspaces/{name}/)?", default=False):
        raise InvalidInput(f"workspace {name} was not removed (-f removes without asking)")
    client.workspaces.rm(name)
    console.print(f"workspace {name} removed")


def register(root: typer.Typer) -> None:
    root.command()(jupyter)
