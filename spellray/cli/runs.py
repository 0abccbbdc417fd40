"""spell run, ps, info, logs, kill, stop, label."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli import exit_codes
from spellray.cli.output import ago, console, err, run_duration, styled_status

if TYPE_CHECKING:
    from spellray.client import Client
    from spellray.schemas import LogChunk


def _client() -> Client:
    from spellray.client import from_environment

    return from_environment()


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    """NAME=VALUE options (-e, --param) into a dict; a malformed one is a usage error."""
    from spellray.errors import InvalidInput

    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"{flag} {item!r} is malformed: write it as {flag} NAME=VALUE")
        result[name.strip()] = value
    return result


def _command_text(args: list[str]) -> str:
    # One argument is a shell command as typed ("python train.py && ls"); several are argv.
    return args[0] if len(args) == 1 else shlex.join(args)


def follow_run(client: Client, run_id: int, tail: int | None = None) -> int:
    """Stream a run's log until it ends; return the exit code for its outcome."""
    from spellray.schemas import RunStatus

    status: RunStatus | None = None
    last: LogChunk | None = None
    offset = 0
    if tail is not None:
        chunk = client.runs.logs(run_id)
        console.out(_last_lines(chunk.text, tail), end="")
        offset = chunk.offset
    try:
        for chunk in client.runs.follow(run_id, offset):
            if chunk.status != status and not chunk.status.is_terminal:
                err.print(f"[dim]run {run_id} is {chunk.status.value}…[/]")
            status, last = chunk.status, chunk
            if chunk.text:
                console.out(chunk.text, end="", highlight=False)
    except KeyboardInterrupt:
        err.print(f"\nDetached from run {run_id}; it keeps running. "
                  f"Reattach: spell logs -f {run_id} · stop: spell stop {run_id} · "
                  f"kill: spell kill {run_id}")
        return exit_codes.DETACHED
    assert last is not None  # follow() yields until a finished chunk
    _print_outcome(run_id, last)
    return exit_codes.for_status(last.status)


def _print_outcome(run_id: int, end: LogChunk) -> None:
    detail = f" (exit code {end.exit_code})" if end.exit_code not in (None, 0) else ""
    reason = f": {end.status_reason}" if end.status_reason else ""
    err.print(f"run {run_id} {styled_status(end.status.value)}{detail}{reason}")


def _last_lines(text: str, count: int) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[-count:]) if count > 0 else ""


def run(
    command: Annotated[list[str], typer.Argument(help="The command (quoted, or after --)")],
    machine_type: Annotated[str, typer.Option("--machine-type", "-t", help="Machine type")] = "CPU",
    mount: Annotated[list[str], typer.Option("--mount", "-m", help="RESOURCE[:PATH] to mount, e.g. runs/42/model:model (repeatable)")] = [],  # noqa: B006,E501
    env: Annotated[list[str], typer.Option("--env", "-e", help="NAME=VALUE (repeatable)")] = [],  # noqa: B006
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    label: Annotated[list[str], typer.Option("--label", help="Label (repeatable)")] = [],  # noqa: B006
    param: Annotated[list[str], typer.Option("--param", help=":NAME: in the command becomes VALUE (NAME=VALUE, repeatable)")] = [],  # noqa: B006,E501
    background: Annotated[bool, typer.Option("--background", "-b", help="Print the run number and return")] = False,  # noqa: E501
    force: Annotated[bool, typer.Option("--force", "-f", help="Skip prompts and warnings")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> int:
    """Run a command on the cluster: spell run "python train.py"."""
    text = _command_text(command)
    client = _client()
    code = client.runs.upload_code(Path.cwd())
    if code["git_dirty"] and not force:
        err.print("[yellow]warning:[/] the code has uncommitted changes; the run records "
                  "the commit as dirty (-f hides this)")
    created = client.runs.new(text, machine_type=machine_type, env=_pairs(env, "-e"),
                              params=_pairs(param, "--param"), description=description,
                              labels=label, code=code, mounts=mount)
    run_id = created.id
    if verbose:
        err.print(f"[dim]code {code['sha256'][:12]} · commit {code['git_commit'] or '-'} · "
                  f"Ray job {created.ray_submission_id}[/]")
    if background:
        console.print(f"run {run_id} started · follow its log: spell logs -f {run_id}")
        return exit_codes.COMPLETE
    err.print(f"[dim]run {run_id} started[/]")
    return follow_run(client, run_id)


def ps(
    number: Annotated[int, typer.Option("--number", "-n", help="How many runs (0: all)")] = 50,
    label: Annotated[str | None, typer.Option("--label", "-l", help="Only runs with this label")] = None,  # noqa: E501
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Show whole commands")] = False,
) -> None:
    """List runs, newest first."""
    from rich.table import Table

    listing = _client().runs.list(number, label)
    table = Table(box=None, header_style="bold")
    for column in ("ID", "STATUS", "COMMAND", "CREATED", "DURATION", "LABELS"):
        table.add_column(column, no_wrap=column != "COMMAND", overflow="fold")
    for item in listing.runs:
        command = item.command if no_trunc or len(item.command) <= 50 else item.command[:47] + "…"
        table.add_row(str(item.id), styled_status(item.status.value), command,
                      ago(item.created_at), run_duration(item.started_at, item.ended_at),
                      ", ".join(item.labels))
    console.print(table)
    if listing.total > len(listing.runs):
        err.print(f"[dim]{len(listing.runs)} of {listing.total} runs; -n 0 shows all[/]")


def info(run_id: Annotated[int, typer.Argument(help="Run number")]) -> None:
    """Everything about a run."""
    client = _client()
    item = client.runs.get(run_id)
    rows = [
        ("Run", str(item.id)),
        ("Status", styled_status(item.status.value)
         + (f" ({item.status_reason})" if item.status_reason else "")),
        ("Exit code", "-" if item.exit_code is None else str(item.exit_code)),
        ("Command", item.command),
        ("Machine type", item.machine_type),
        ("Description", item.description or "-"),
        ("Labels", ", ".join(item.labels) or "-"),
        ("Params", ", ".join(f"{k}={v}" for k, v in item.params.items()) or "-"),
        ("Env", ", ".join(f"{k}={v}" for k, v in item.env.items()) or "-"),
        ("Mounts", ", ".join(f"{m.resource}"
                             f"{f' ({m.resolved})' if m.resolved != m.resource else ''}"
                             f" at {m.path}" for m in item.mounts) or "-"),
        ("Code", f"{item.code.sha256[:12]}" + (f" · git {item.code.git_commit[:10]}"
                                               f"{' (dirty)' if item.code.git_dirty else ''}"
                                               if item.code and item.code.git_commit else "")
         if item.code else "-"),
        ("Ray job", item.ray_submission_id or "-"),
        ("Created", f"{item.created_at:%Y-%m-%d %H:%M:%S} ({ago(item.created_at)})"),
        ("Duration", run_duration(item.started_at, item.ended_at)),
    ]
    for key, value in rows:
        console.print(f"[bold]{key:<13}[/]{value}")
    console.print("[bold]History[/]")
    for event in item.history:
        reason = f"  {event.reason}" if event.reason else ""
        console.print(f"  {event.at:%H:%M:%S}  {styled_status(event.status.value)}{reason}")
    outputs = client.runs.outputs(run_id)
    console.print(f"[bold]Outputs[/]      {len(outputs)} file(s) in runs/{run_id}")
    for output in outputs[:50]:
        console.print(f"  {output.path}  [dim]{output.size} B[/]")


def logs(
    run_id: Annotated[int, typer.Argument(help="Run number")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends")] = False,  # noqa: E501
    tail: Annotated[int | None, typer.Option("--tail", "-n", help="Only the last N lines")] = None,
) -> int:
    """Print a run's log."""
    client = _client()
    if follow:
        return follow_run(client, run_id, tail)
    chunk = client.runs.logs(run_id)
    text = chunk.text if tail is None else _last_lines(chunk.text, tail)
    console.out(text, end="", highlight=False)
    return exit_codes.for_status(chunk.status)


def _each(run_ids: list[int], action: str) -> int:
    from spellray.errors import NotFound, SpellrayError

    client = _client()
    code = exit_codes.COMPLETE
    for run_id in run_ids:
        try:
            result = getattr(client.runs, action)(run_id)
            err.print(f"run {run_id}: {action} requested ({result.status.value})")
        except SpellrayError as exc:
            err.print(f"[red]error:[/] {exc.message}")
            code = exit_codes.NOT_FOUND if isinstance(exc, NotFound) else exit_codes.ERROR
    return code


def kill(run_ids: Annotated[list[int], typer.Argument(help="Run numbers")]) -> int:
    """End runs now; their outputs are not saved."""
    return _each(run_ids, "kill")


def stop(run_ids: Annotated[list[int], typer.Argument(help="Run numbers")]) -> int:
    """End runs and save their outputs."""
    return _each(run_ids, "stop")


def label(
    run_id: Annotated[int, typer.Argument(help="Run number")],
    name: Annotated[str, typer.Argument(help="Label")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove the label")] = False,
) -> None:
    """Add a label to a run (or remove it)."""
    item = _client().runs.label(run_id, name, remove)
    console.print(f"run {run_id} labels: {', '.join(item.labels) or '-'}")


def register(app: typer.Typer) -> None:
    # Everything after the command's first word belongs to the command (`spell run python
    # train.py --lr 3`), as in Spell.
    app.command(context_settings={"allow_interspersed_args": False})(run)
    for command in (ps, info, logs, kill, stop, label):
        app.command()(command)
