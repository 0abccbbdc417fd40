"""spell run, ps, info, logs, kill, stop, label."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli import exit_codes
from spellray.cli import run_flags as flags
from spellray.cli.output import ago, console, err, run_duration, styled_status

if TYPE_CHECKING:
    from spellray.client import Client
    from spellray.schemas import LogChunk, Run


def _client() -> Client:
    from spellray.client import from_environment

    return from_environment()


def pairs(items: list[str], flag: str) -> dict[str, str]:
    """NAME=VALUE options (-e, --param) into a dict; a malformed one is a usage error."""
    from spellray.errors import InvalidInput

    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"{flag} {item!r} is malformed: write it as {flag} NAME=VALUE")
        result[name.strip()] = value
    return result


def command_text(args: list[str]) -> str:
    # One argument is a shell command as typed ("python train.py && ls"); several are argv.
    return args[0] if len(args) == 1 else shlex.join(args)


def follow_run(client: Client, run_id: int, tail: int | None = None) -> int:
    """Stream a run's log until it ends; return the exit code for its outcome. A run
    interrupted and resumed (auto-resume) is followed on into the run it is resumed as."""
    from spellray.schemas import RunStatus

    while True:
        last = _follow_one(client, run_id, tail)
        if last is None:
            return exit_codes.DETACHED
        try:
            resumed = client.runs.resumed_as(client.runs.get(run_id)) \
                if last.status is RunStatus.interrupted else None
        except KeyboardInterrupt:
            resumed = None  # the outcome as it is: the run's own
        _print_outcome(run_id, last, f"; resumed as run {resumed}" if resumed else "")
        if resumed is None:
            return exit_codes.for_status(last.status)
        run_id, tail = resumed, None


def _follow_one(client: Client, run_id: int, tail: int | None) -> LogChunk | None:
    """One run's log until it ends: its last chunk (None: the user detached)."""
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
        return None
    assert last is not None  # follow() yields until a finished chunk
    return last


def _print_outcome(run_id: int, end: LogChunk, then: str = "") -> None:
    detail = f" (exit code {end.exit_code})" if end.exit_code not in (None, 0) else ""
    reason = f": {end.status_reason}" if end.status_reason else ""
    err.print(f"run {run_id} {styled_status(end.status.value)}{detail}{reason}{then}")


def _last_lines(text: str, count: int) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[-count:]) if count > 0 else ""


def run(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(help="The command (quoted, or after --)")] = None,  # noqa: E501
    machine_type: flags.MachineType = "CPU",
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
    description: flags.Description = None,
    label: flags.Labels = [],  # noqa: B006
    param: Annotated[list[str], typer.Option("--param", help=":NAME: in the command becomes VALUE (NAME=VALUE, repeatable)")] = [],  # noqa: B006,E501
    idempotent: Annotated[bool, typer.Option("--idempotent", help="Reuse an identical active or complete run")] = False,  # noqa: E501
    timeout: flags.Timeout = None,
    stop_condition: flags.StopConditions = [],  # noqa: B006
    distributed: flags.Distributed = None,
    tensorboard_dir: flags.TensorboardDir = None,
    project: flags.Project = None,
    auto_resume: Annotated[bool | None, typer.Option("--auto-resume/--disable-auto-resume", help="When its machine is taken back (spot), start the run again from its saved outputs (default: the machine type's --default-auto-resume)")] = None,  # noqa: E501
    max_resumes: Annotated[int, typer.Option("--max-resumes", help="With --auto-resume: the most times the run is started again")] = 5,  # noqa: E501  schemas' DEFAULT_MAX_RESUMES (not imported: the CLI starts without pydantic)
    from_file: Annotated[Path | None, typer.Option("--from-file", help="Read options from a YAML/JSON file")] = None,  # noqa: E501
    save_command: Annotated[Path | None, typer.Option("--save-command", help="Write this run's options to a YAML file")] = None,  # noqa: E501
    background: Annotated[bool, typer.Option("--background", "-b", help="Print the run number and return")] = False,  # noqa: E501
    force: flags.Force = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    python2: Annotated[bool, typer.Option("--python2", help="Spell's Python 2 runs: refused, Python 2 is gone (port the code to Python 3)")] = False,  # noqa: E501
) -> int:
    """Run a command on the cluster: spell run "python train.py"."""
    from spellray.cli.run_options import merge_options, save_options
    from spellray.client.environment import build_environment
    from spellray.errors import InvalidInput

    o = merge_options(ctx, from_file)
    if o.pop("python2"):  # Spell's flag, on the command line or in --from-file
        raise InvalidInput("--python2 is refused: Python 2 reached its end of life in 2020 and "
                           "Ray runs Python 3 only; port the code to Python 3 and run it "
                           "without --python2")
    if save_command is not None:
        save_options(save_command, o)
        err.print(f"[dim]options saved to {save_command}; rerun: spell run --from-file "
                  f"{save_command}[/]")
    if not o["command"]:
        raise InvalidInput('give a command, e.g. spell run "python train.py" '
                           "(or command: in --from-file)")
    if o["commit_ref"] and o["github_url"]:
        raise InvalidInput("-c/--commit-ref picks a commit of the local repository; with "
                           "--github-url use --github-ref")
    text = command_text(o["command"])
    from spellray.schemas.stop_conditions import normalize

    try:  # before anything is uploaded or started
        stop_conditions = normalize(o["stop_condition"])
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    environment = build_environment(o["pip"], o["pip_req"], o["apt"], o["conda_file"],
                                    o["docker_image"], o["framework"])
    client = _client()
    code = None
    if not o["github_url"]:
        code = client.runs.upload_code(Path.cwd(), commit_ref=o["commit_ref"])
        if code["git_dirty"] and not force:
            err.print("[yellow]warning:[/] the code has uncommitted changes; the run records "
                      "the commit as dirty (-f hides this)")
    created = client.runs.new(
        text, machine_type=o["machine_type"], env=pairs(o["env"], "-e"),
        params=pairs(o["param"], "--param"), description=o["description"], labels=o["label"],
        code=code, code_dir=None, mounts=o["mount"], environment=environment,
        github_url=o["github_url"], github_ref=o["github_ref"], idempotent=o["idempotent"],
        timeout_minutes=o["timeout"], stop_conditions=stop_conditions,
        distributed=o["distributed"], tensorboard_dir=o["tensorboard_dir"],
        auto_resume=o["auto_resume"], max_resumes=o["max_resumes"], project=o["project"])
    run_id = created.id
    reused = created.reused
    if verbose:
        source = (f"git {created.git.url} @ {created.git.commit}" if created.git else
                  f"code {code['sha256'][:12]} · commit {code['git_commit'] or '-'}"
                  if code else "no code")
        # A queued run has no Ray job yet (the queue submits it when there is room).
        ray_job = created.ray_submission_id or f"none yet ({created.waiting or 'queued'})"
        err.print(f"[dim]{source} · environment {created.environment_digest or '-'} · "
                  f"Ray job {ray_job}[/]")
    if reused:
        err.print(f"[dim]--idempotent: run {run_id} is identical ({created.status.value}); "
                  "not starting another[/]")
    if background:
        what = f"is {created.status.value}" if reused else "started"
        console.print(f"run {run_id} {what} · follow its log: spell logs -f {run_id}")
        return exit_codes.COMPLETE
    if not reused:
        err.print(f"[dim]run {run_id} started[/]")
    return follow_run(client, run_id)


def ps(
    number: Annotated[int, typer.Option("--number", "-n", help="How many runs (0: all)")] = 50,
    label: Annotated[str | None, typer.Option("--label", "-l", help="Only runs with this label")] = None,  # noqa: E501
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Show whole commands")] = False,
    all_kinds: Annotated[bool, typer.Option("--all", help="Workspaces' runs too")] = False,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's runs (uncategorized: those in none)")] = None,  # noqa: E501
    archived: Annotated[bool, typer.Option("--archived", help="The archived runs (spell archive) instead")] = False,  # noqa: E501
) -> None:
    """List runs, newest first."""
    from rich.table import Table

    listing = _client().runs.list(number, label, include_workspaces=all_kinds,
                                  project=project, archived=archived)
    table = Table(box=None, header_style="bold")
    in_workflows = any(item.workflow_id for item in listing.runs)
    # Whose: only when the runs listed are more than one owner's (a team's and one's own).
    owned = len({item.owner for item in listing.runs}) > 1
    # Which project: when listing more than one project's runs.
    in_projects = project is None and any(item.project for item in listing.runs)
    columns = ("ID", "STATUS", "COMMAND", "CREATED", "DURATION", "LABELS")
    columns = (*columns[:2], "OWNER", *columns[2:]) if owned else columns
    columns = (*columns, "PROJECT") if in_projects else columns
    for column in (*columns, "WORKFLOW") if in_workflows else columns:
        # A narrow terminal wraps the command and the status (a queued run's says what it
        # waits for), never the run's number.
        table.add_column(column, no_wrap=column not in ("COMMAND", "STATUS"), overflow="fold",
                         min_width=len(str(listing.runs[0].id)) if column == "ID" and
                         listing.runs else None)
    for item in listing.runs:
        command = item.command if no_trunc or len(item.command) <= 50 else item.command[:47] + "…"
        status = styled_status(item.status.value) + \
            (f" [dim]({item.waiting})[/]" if item.waiting else "") + _chain_mark(item)
        row = [str(item.id), status, *([item.owner or "-"] if owned else []), command,
               ago(item.created_at), run_duration(item.started_at, item.ended_at),
               ", ".join(item.labels), *([item.project or "-"] if in_projects else [])]
        if in_workflows:  # a workflow's manager, or a run it started (spell workflow)
            row.append("" if item.workflow_id is None else f"{item.workflow_id} (manager)"
                       if item.kind == "workflow" else f"{item.workflow_id} ↳ {item.parent_run_id}")
        table.add_row(*row)
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
         + (f" ({item.waiting or item.status_reason})"
            if item.waiting or item.status_reason else "")),
        ("Exit code", "-" if item.exit_code is None else str(item.exit_code)),
        ("Command", item.command),
        ("Machine type", item.machine_type),
        ("Distributed", f"{item.distributed} ranks" if item.distributed else "-"),
        ("Project", item.project or "- (uncategorized)"),
        ("Description", item.description or "-"),
        ("Labels", ", ".join(item.labels) or "-"),
        ("Params", ", ".join(f"{k}={v}" for k, v in item.params.items()) or "-"),
        ("Env", ", ".join(f"{k}={v}" for k, v in item.env.items()) or "-"),
        ("Mounts", ", ".join(f"{m.resource}"
                             f"{f' ({m.resolved})' if m.resolved != m.resource else ''}"
                             f" at {m.path}" for m in item.mounts) or "-"),
        ("Code", _code_text(item)),
        ("Environment", _environment_text(item)),
        ("Timeout", f"{item.timeout_minutes:g} min" if item.timeout_minutes else "-"),
        ("Stop when", " or ".join(item.stop_conditions) or "-"),
        ("Auto-resume", _resume_text(item)),
        ("TensorBoard", f"{item.tensorboard_dir or '.'} (runs/{item.id}"
         f"{'/' + item.tensorboard_dir if item.tensorboard_dir else ''})"
         if item.tensorboard_dir is not None else "-"),
        ("MLflow run", item.mlflow_run_id or "-"),
        ("Ray job", item.ray_submission_id or "-"),
        ("Created", f"{item.created_at:%Y-%m-%d %H:%M:%S} ({ago(item.created_at)})"),
        *([("Archived", f"{item.archived_at:%Y-%m-%d %H:%M:%S} (spell unarchive {item.id})")]
          if item.archived_at else []),
        ("Duration", run_duration(item.started_at, item.ended_at)),
    ]
    for key, value in rows:
        console.print(f"[bold]{key:<13}[/]{value}", highlight=False)
    building = item.status.value in ("requested", "building")
    build_failed = item.status.value == "failed" and \
        (item.status_reason or "").startswith("build failed")
    if item.environment_digest and (building or build_failed):
        build = client.runs.environment_log(run_id)
        if build.text:
            console.print(f"[bold]Environment build log[/] [dim]({build.source})[/]")
            console.out(build.text, end="" if build.text.endswith("\n") else "\n",
                        highlight=False)
    console.print("[bold]History[/]")
    for event in item.history:
        reason = f"  {event.reason}" if event.reason else ""
        console.print(f"  {event.at:%H:%M:%S}  {styled_status(event.status.value)}{reason}")
    outputs = client.runs.outputs(run_id)
    console.print(f"[bold]Outputs[/]      {len(outputs)} file(s) in runs/{run_id}")
    for output in outputs[:50]:
        console.print(f"  {output.path}  [dim]{output.size} B[/]")


def _chain_mark(item: Run) -> str:
    """`spell ps`: where a run sits in an auto-resume chain."""
    marks = [f"from {item.resumed_from}"] if item.resumed_from else []
    marks += [f"resumed as {item.resumed_as}"] if item.resumed_as else []
    return f" [dim]({'; '.join(marks)})[/]" if marks else ""


def _resume_text(item: Run) -> str:
    """`spell info`: auto-resume, and the chain both ways."""
    text = f"on (up to {item.max_resumes} times)" if item.auto_resume else "off"
    if item.resumed_from:
        text += f" · resumed from {item.resumed_from}"
    if item.resumed_as:
        text += f" · resumed as {item.resumed_as}"
    return text


def _code_text(item: Run) -> str:
    if item.git:
        return f"git {item.git.url} @ {item.git.ref or 'HEAD'} ({(item.git.commit or '-')[:12]})"
    if not item.code:
        return "-"
    text = item.code.sha256[:12]
    if item.code.git_commit:
        text += f" · git {item.code.git_commit[:10]}{' (dirty)' if item.code.git_dirty else ''}"
    return text


def _environment_text(item: Run) -> str:
    env = item.environment
    if item.environment_digest is None:
        return "- (the node's own)"
    parts = [f"{item.environment_digest[:12]}"]
    if env.pip:
        parts.append(f"pip {' '.join(env.pip)}")
    if env.apt:
        parts.append(f"apt {' '.join(env.apt)}")
    if env.conda is not None:
        parts.append(f"conda {env.conda.get('name') or '(unnamed)'}")
    if env.docker_image:
        parts.append(f"image {env.docker_image}")
    return " · ".join(parts)


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
