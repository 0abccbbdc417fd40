"""spell hyper grid | random | bayesian | list | describe | stop | kill | archive |
download-metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from spellray.cli import exit_codes, hyper_trials
from spellray.cli import run_flags as flags
from spellray.cli.hyper_trials import space
from spellray.cli.output import ago, console, err, styled_status

app = typer.Typer(help="Hyperparameter searches: one run per trial, on Ray Tune.",
                  no_args_is_help=True)

Params = Annotated[list[str], typer.Option("--param", help="NAME=V1,V2,... or NAME=MIN:MAX[:scale[:type]] (repeatable)")]  # noqa: E501
JsonParams = Annotated[list[str], typer.Option("--json-param", help="NAME='[JSON list]' (repeatable)")]  # noqa: E501
NumRuns = Annotated[int, typer.Option("--num-runs", "-n", help="How many trials")]
Metric = Annotated[str | None, typer.Option("--metric", help="The metric that judges trials")]
Mode = Annotated[str, typer.Option("--mode", help="max or min: which way is better")]
EarlyStop = Annotated[bool, typer.Option("--early-stop", help="Stop poor trials early (ASHA on --metric)")]  # noqa: E501
# No -f: Spell's run options use it for --force.
Follow = Annotated[bool, typer.Option("--follow", help="Show the trials live until the search ends; exit 0 only if every trial completed")]  # noqa: E501
MaxConcurrent = Annotated[int | None, typer.Option("--max-concurrent", help="At most this many trials at once")]  # noqa: E501
# Everything after the command's first word belongs to the command, as with spell run.
_COMMAND_LAST = {"allow_interspersed_args": False}
Command = Annotated[list[str], typer.Argument(help="The command, with :NAME: placeholders")]


def _client() -> Any:
    from spellray.client import from_environment

    return from_environment()


def _start(kind: str, command: list[str], params: list[str], json_params: list[str],
           options: dict[str, Any], run: dict[str, Any], follow: bool = False) -> int:
    from spellray.cli.runs import command_text, pairs
    from spellray.client.environment import build_environment
    from spellray.client.hyper import param_specs
    from spellray.errors import InvalidInput
    from spellray.schemas.stop_conditions import normalize
    from spellray.tune.space import check_command

    text = command_text(command)
    # Checked here first, so a bad search costs no code upload.
    for warning in check_command(text, param_specs(kind, params, json_params)):
        err.print(f"[yellow]warning:[/] {warning}")
    if run.pop("distributed"):
        raise InvalidInput("--distributed is not supported by spell hyper: its trials run "
                           "as single processes; start distributed runs with spell run")
    try:
        stop_conditions = normalize(run.pop("stop_condition"))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if run["commit_ref"] and run["github_url"]:
        raise InvalidInput("-c/--commit-ref picks a commit of the local repository; with "
                           "--github-url use --github-ref")
    environment = build_environment(run.pop("pip"), run.pop("pip_req"), run.pop("apt"),
                                    run.pop("conda_file"), run.pop("docker_image"),
                                    run.pop("framework"))
    search = _client().hyper.start(
        kind, text, params, json_params, environment=environment,
        code_dir=None if run["github_url"] else Path.cwd(), stop_conditions=stop_conditions,
        mounts=run.pop("mount"), labels=run.pop("label"), env=pairs(run.pop("env"), "-e"),
        timeout_minutes=run.pop("timeout"), **options, **run)
    if follow:
        err.print(f"search {search.id} started · stop: spell hyper stop {search.id}")
        return hyper_trials.follow(_client(), search.id)
    console.print(f"search {search.id} started · its runs: spell hyper describe {search.id} · "
                  f"stop: spell hyper stop {search.id}")
    return exit_codes.COMPLETE


@app.command(context_settings=_COMMAND_LAST)
@flags.with_run_options
def grid(
    command: Command, param: Params = [], json_param: JsonParams = [],  # noqa: B006
    metric: Metric = None, mode: Mode = "max", early_stop: EarlyStop = False,
    max_concurrent: MaxConcurrent = None, follow: Follow = False, **run: Any,
) -> int:
    """One run per combination: spell hyper grid --param rate=0.1,1 "python t.py --rate :rate:"."""
    return _start("grid", command, param, json_param,
                  {"metric": metric, "mode": mode, "early_stop": early_stop,
                   "max_concurrent": max_concurrent}, run, follow)


@app.command(context_settings=_COMMAND_LAST)
@flags.with_run_options
def random(
    command: Command, num_runs: NumRuns, param: Params = [],  # noqa: B006
    json_param: JsonParams = [], metric: Metric = None, mode: Mode = "max",  # noqa: B006
    early_stop: EarlyStop = False, max_concurrent: MaxConcurrent = None,
    follow: Follow = False, **run: Any,
) -> int:
    """N runs with values drawn from lists or MIN:MAX[:linear|log|reverse_log[:int|float]]."""
    return _start("random", command, param, json_param,
                  {"num_runs": num_runs, "metric": metric, "mode": mode,
                   "early_stop": early_stop, "max_concurrent": max_concurrent}, run, follow)


@app.command(context_settings=_COMMAND_LAST)
@flags.with_run_options
def bayesian(
    command: Command, num_runs: NumRuns,
    metric: Annotated[str, typer.Option("--metric", help="The metric to optimize")],
    # Spell's name is --parallel-runs; spellray's --parallel is kept.
    parallel: Annotated[int, typer.Option("--parallel-runs", "--parallel", "-r", help="Trials at once")] = 1,  # noqa: E501
    aggregation: Annotated[str, typer.Option("--metric-agg", "-a", help="avg, min, max or last of the metric's series")] = "last",  # noqa: E501
    param: Params = [], json_param: JsonParams = [],  # noqa: B006
    mode: Mode = "max", early_stop: EarlyStop = False, follow: Follow = False, **run: Any,
) -> int:
    """N runs chosen by Optuna (Ray Tune's OptunaSearch) to make --metric best."""
    return _start("bayesian", command, param, json_param,
                  {"num_runs": num_runs, "parallel": parallel, "metric": metric,
                   "aggregation": aggregation, "mode": mode, "early_stop": early_stop}, run,
                  follow)


@app.command("list")
def list_searches(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Archived ones too")] = False,
) -> None:
    """Searches, newest first."""
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("ID", "KIND", "STATUS", "RUNS", "PARAMS", "CREATED"):
        table.add_column(column, overflow="fold")
    for search in _client().hyper.list(archived=all_).searches:
        table.add_row(str(search.id), search.kind, styled_status(search.status),
                      str(len(search.run_ids)), space(search), ago(search.created_at))
    console.print(table)


@app.command()
def describe(
    search_id: Annotated[int, typer.Argument(help="Search number")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show the trials live until the search ends; exit 0 only if every trial completed")] = False,  # noqa: E501
) -> int:
    """A search and its runs, best first when it has a metric."""
    if follow:
        return hyper_trials.follow(_client(), search_id)
    hyper_trials.describe(_client(), search_id)
    return exit_codes.COMPLETE


def _action(search_id: int, action: str) -> int:
    from spellray.errors import NotFound, SpellrayError

    try:
        search = getattr(_client().hyper, action)(search_id)
    except SpellrayError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        return exit_codes.NOT_FOUND if isinstance(exc, NotFound) else exit_codes.ERROR
    err.print(f"search {search_id}: {action} requested ({search.status})")
    return exit_codes.COMPLETE


@app.command()
def stop(search_id: Annotated[int, typer.Argument(help="Search number")]) -> int:
    """Stop a search: no new trials; running ones stop and save their outputs."""
    return _action(search_id, "stop")


@app.command()
def kill(search_id: Annotated[int, typer.Argument(help="Search number")]) -> int:
    """Kill a search and its running trials now (outputs not saved)."""
    return _action(search_id, "kill")


@app.command()
def archive(search_id: Annotated[int, typer.Argument(help="Search number")]) -> int:
    """Hide an ended search from spell hyper list (--all shows it)."""
    return _action(search_id, "archive")


@app.command("download-metrics")
def download_metrics(
    search_id: Annotated[int, typer.Argument(help="Search number")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout)")] = None,  # noqa: E501
) -> None:
    """A CSV of the search's metrics: one row per run and metric."""
    text = _client().hyper.metrics_csv(search_id)
    if output is None:
        console.out(text, end="", highlight=False)
    else:
        output.write_text(text)
        err.print(f"wrote {output}")
