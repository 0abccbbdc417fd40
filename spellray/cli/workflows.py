"""spell workflow create | list | describe | stop | kill | rm (older Spell: `spell workflow
"COMMAND"`, without `create`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from spellray.cli import exit_codes
from spellray.cli import run_flags as flags
from spellray.cli.output import ago, console, err, styled_status

if TYPE_CHECKING:
    import click

    from spellray.client import Client
    from spellray.schemas import Run, Workflow


class _CreateByDefault(TyperGroup):
    """`spell workflow "python manager.py"` (Spell's older form) is `spell workflow create`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_CreateByDefault, no_args_is_help=True,
                  help="Workflows: a manager run that starts runs, waits for them and chains "
                       "their outputs.")

Repos = Annotated[list[str], typer.Option("--repo", "-r", help="LABEL=PATH[:COMMIT]: snapshot this git repository now; runs.new(commit_label=LABEL) runs on it (repeatable)")]  # noqa: E501
GithubRepos = Annotated[list[str], typer.Option("--github-repo", help="LABEL=URL[:REF]: a git repository at the commit REF has now (repeatable)")]  # noqa: E501
Local = Annotated[bool, typer.Option("--local", help="Run the manager on this machine; its runs on the cluster")]  # noqa: E501
Background = Annotated[bool, typer.Option("--background", "-b", help="Print the workflow number and return")]  # noqa: E501
WorkflowId = Annotated[int, typer.Argument(help="Workflow number (its manager run's)")]
# How often `create` looks at the workflow's runs while it prints the manager's log.
POLL_SECONDS = 1.0


def _client() -> Client:
    from spellray.client import from_environment

    return from_environment()


@app.command(context_settings={"allow_interspersed_args": False})
@flags.with_run_options
def create(
    command: Annotated[list[str], typer.Argument(help="The manager's command")],
    repo: Repos = [],  # noqa: B006
    github_repo: GithubRepos = [],  # noqa: B006
    local: Local = False,
    background: Background = False,
    **run: Any,
) -> int:
    """Start a workflow: spell workflow create --repo code=. "python manager.py"."""
    from spellray.cli.runs import command_text, pairs
    from spellray.client.environment import build_environment
    from spellray.client.workflows import parse_github_repo, parse_repo
    from spellray.errors import InvalidInput
    from spellray.schemas.stop_conditions import normalize

    text = command_text(command)
    # Checked here too (the SDK checks them again) so that a typo starts no local cluster.
    for spec in repo:
        parse_repo(spec)
    for spec in github_repo:
        parse_github_repo(spec)
    if local and background:
        raise InvalidInput("--local runs the manager here, in this terminal: drop -b")
    if run["commit_ref"] and run["github_url"]:
        raise InvalidInput("-c/--commit-ref picks a commit of the local repository; with "
                           "--github-url use --github-ref")
    try:
        stop_conditions = normalize(run.pop("stop_condition"))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    environment = build_environment(run.pop("pip"), run.pop("pip_req"), run.pop("apt"),
                                    run.pop("conda_file"), run.pop("docker_image"),
                                    run.pop("framework"))
    client = _client()
    workflow = client.workflows.create(
        text, repos=repo, github_repos=github_repo, local=local, environment=environment,
        code_dir=None if run["github_url"] or local else Path.cwd(),
        stop_conditions=stop_conditions, mounts=run.pop("mount"), labels=run.pop("label"),
        env=pairs(run.pop("env"), "-e"), timeout_minutes=run.pop("timeout"), **run)
    if background:
        console.print(f"workflow {workflow.id} started · follow it: spell workflow describe "
                      f"{workflow.id} · stop: spell workflow stop {workflow.id}")
        return exit_codes.COMPLETE
    err.print(f"[dim]workflow {workflow.id} started[/]")
    if local:
        from spellray.cli.workflow_local import run_manager_here

        return run_manager_here(client, workflow, text, lambda: _child_news(client, workflow.id))
    return _follow(client, workflow.id)


class _ChildNews:
    """One line per run of the workflow that started or ended since it last looked."""

    def __init__(self, client: Client, workflow_id: int) -> None:
        self.client, self.workflow_id = client, workflow_id
        self.seen: dict[int, str] = {}

    def __call__(self) -> Workflow:
        workflow = self.client.workflows.get(self.workflow_id)
        for child in workflow.runs:
            before, now = self.seen.get(child.id), child.status
            if before is None:
                err.print(f"[dim]workflow {self.workflow_id}:[/] run {child.id} started: "
                          f"{child.command}")
            if now.is_terminal and before != now.value:
                err.print(f"[dim]workflow {self.workflow_id}:[/] run {child.id} "
                          f"{styled_status(now.value)}")
            self.seen[child.id] = now.value
        return workflow


_news: dict[int, _ChildNews] = {}


def _child_news(client: Client, workflow_id: int) -> Workflow:
    return _news.setdefault(workflow_id, _ChildNews(client, workflow_id))()


def _follow(client: Client, workflow_id: int) -> int:
    """The manager's log and a line per child, until the workflow ends."""
    offset, looked = 0, 0.0
    try:
        while True:
            chunk = client.runs.logs(workflow_id, offset, wait=POLL_SECONDS)
            offset = chunk.offset
            if chunk.text:
                console.out(chunk.text, end="", highlight=False)
            if time.monotonic() - looked >= POLL_SECONDS or chunk.finished:
                _child_news(client, workflow_id)
                looked = time.monotonic()
            if chunk.finished:
                break
    except KeyboardInterrupt:
        err.print(f"\nDetached from workflow {workflow_id}; it keeps running. "
                  f"See it: spell workflow describe {workflow_id} · stop: spell workflow stop "
                  f"{workflow_id} · kill: spell workflow kill {workflow_id}")
        return exit_codes.DETACHED
    reason = f": {chunk.status_reason}" if chunk.status_reason else ""
    err.print(f"workflow {workflow_id} {styled_status(chunk.status.value)}{reason}")
    return exit_codes.for_status(chunk.status)


@app.command("list")
def list_workflows(
    number: Annotated[int, typer.Option("--number", "-n", help="How many (0: all)")] = 50,
) -> None:
    """Workflows, newest first."""
    from rich.table import Table

    listing = _client().workflows.list(number)
    table = Table(box=None, header_style="bold")
    for column in ("ID", "STATUS", "COMMAND", "RUNS", "CREATED"):
        table.add_column(column, overflow="fold")
    for item in listing.workflows:
        table.add_row(str(item.id), styled_status(item.status.value), item.manager.command,
                      str(len(item.runs)), ago(item.created_at))
    console.print(table)


def _run_line(item: Run) -> str:
    from rich.markup import escape

    reason = f" ({item.status_reason})" if item.status_reason else ""
    return (f"run {item.id}  {styled_status(item.status.value)}{escape(reason)}  "
            f"{escape(item.command)}")


@app.command()
def describe(workflow_id: WorkflowId) -> None:
    """A workflow and its runs, as a tree with their statuses."""
    from rich.tree import Tree

    workflow = _client().workflows.get(workflow_id)
    manager = workflow.manager
    tree = Tree(f"[bold]workflow {workflow.id}[/]  {_run_line(manager)}")
    children: dict[int | None, list[Run]] = {}
    for child in workflow.runs:
        children.setdefault(child.parent_run_id, []).append(child)

    def add(node: Tree, parent: int) -> None:
        for child in children.get(parent, []):
            add(node.add(_run_line(child)), child.id)

    add(tree, workflow.id)
    console.print(tree)
    for repo in workflow.repos:
        source = (f"git {repo.git.url} @ {(repo.git.commit or '-')[:12]}" if repo.git else
                  f"code {repo.code.sha256[:12]} · commit {(repo.code.git_commit or '-')[:12]}"
                  if repo.code else "-")
        console.print(f"[bold]repo[/] {repo.label}: {source}")


def _act(workflow_id: int, action: str) -> int:
    workflow = getattr(_client().workflows, action)(workflow_id)
    active = [r.id for r in workflow.runs if not r.status.is_terminal]
    err.print(f"workflow {workflow_id}: {action} requested ({workflow.status.value}); "
              f"{len(workflow.runs)} run(s), {len(active)} still ending")
    return exit_codes.COMPLETE


@app.command()
def stop(workflow_id: WorkflowId) -> int:
    """Stop the manager and every active run (outputs saved); no new run starts."""
    return _act(workflow_id, "stop")


@app.command()
def kill(workflow_id: WorkflowId) -> int:
    """End the manager and every active run now."""
    return _act(workflow_id, "kill")


@app.command()
def rm(workflow_id: WorkflowId) -> None:
    """Take an ended workflow off the list (its runs and outputs stay)."""
    _client().workflows.rm(workflow_id)
    err.print(f"workflow {workflow_id} removed")
