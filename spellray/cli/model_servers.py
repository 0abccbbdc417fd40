"""Model servers on Ray Serve: `spell server serve | list | describe | logs | predict |
healthcheck | start NAME | stop NAME | update | rm`, and older Spell's `spell model-servers
create NAME RESOURCE`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spellray.cli.model_server_options import (
    AnswerTimeout,
    Batching,
    Config,
    FromFile,
    MaxBatch,
    NodeGroup,
    NoWait,
    RequestTimeout,
    ServingGroup,
    Validate,
    read_config,
    serving_options,
    wait_ready,
)
from spellray.cli.output import ago, console, err
from spellray.cli.run_flags import Env, MachineType, Pip, PipReq
from spellray.errors import InvalidInput

if TYPE_CHECKING:
    from spellray.client import Client
    from spellray.schemas import ModelServer

Name = Annotated[str, typer.Argument(help="The model server's name")]
ServerOption = Annotated[str | None, typer.Option("--name", "-n", help="The server's name (default: the model's name); its endpoint is /NAME")]  # noqa: E501
Classname = Annotated[str | None, typer.Option("--classname", help="The predictor class (default: the only class with a predict method)")]  # noqa: E501
MinPods = Annotated[int | None, typer.Option("--min-pods", help="Fewest replicas (default 1)")]
MaxPods = Annotated[int | None, typer.Option("--max-pods", help="Most replicas: Serve autoscales between the two")]  # noqa: E501
TargetRps = Annotated[float | None, typer.Option("--target-requests-per-second", help="Requests per second one replica should take (autoscaling target)")]  # noqa: E501
Public = Annotated[bool, typer.Option("--public", help="No token needed to call the endpoint")]


def _client() -> Client:
    from spellray.client import from_environment

    return from_environment()


def _show(server: ModelServer) -> None:
    console.print(f"model server {server.name}: {server.status} · {server.model} · "
                  f"{server.endpoint}", markup=False)


def _validate(o: dict[str, Any], what: str) -> None:
    """--validate: import the predictor here and check its class; nothing is deployed (no
    spellray server is needed either)."""
    from spellray.client.model_servers import validate_predictor

    if not o["entrypoint"]:
        raise InvalidInput(f"--validate checks a predictor file: give {what}")
    found = validate_predictor(o["entrypoint"], o["classname"], read_config(o["config"]))
    console.print(f"{o['entrypoint']}: {found} is a valid predictor (nothing deployed)",
                  markup=False)


def _deployed(client: Client, server: ModelServer, no_wait: bool) -> None:
    """After serve/update/start: wait until it answers (unless --no-wait), then show it."""
    if not no_wait:
        server = wait_ready(client, server)
    _show(server)


def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="MODEL:VERSION (or MODEL: its newest version)")],
    entrypoint: Annotated[str | None, typer.Argument(help="The predictor file in this folder; leave out for a model with an MLmodel file (MLflow pyfunc)")] = None,  # noqa: E501
    name: ServerOption = None, classname: Classname = None, min_pods: MinPods = None,
    max_pods: MaxPods = None, target_requests_per_second: TargetRps = None,
    machine_type: MachineType = "CPU", node_group: NodeGroup = None,
    serving_group: ServingGroup = None, pip: Pip = [],  # noqa: B006
    pip_req: PipReq = None, env: Env = [],  # noqa: B006
    enable_batching: Batching = False, max_batch_size: MaxBatch = None,
    request_timeout: RequestTimeout = None, answer_timeout: AnswerTimeout = None,
    config: Config = None, public: Public = False, from_file: FromFile = None,
    validate: Validate = False, no_wait: NoWait = False,
) -> None:
    """Serve a model on Ray Serve: spell server serve digits:v1 predictor.py.

    The folder is packaged like a run's code; the predictor class (Spell's BasePredictor, or
    any class with predict) is built in each replica, the model's files at /model. Waits
    until the server answers (--no-wait: return at once)."""
    from spellray.cli.run_options import merge_options

    o = merge_options(ctx, from_file)
    if o["validate"]:
        _validate(o, "ENTRYPOINT")
        return
    client = _client()
    server = client.model_servers.serve(o["model"], o["entrypoint"], name=o["name"],
                                        classname=o["classname"], public=o["public"],
                                        **serving_options(o))
    err.print(f"model server {server.name}: {server.status}; status and token: "
              f"spell server describe {server.name}", markup=False)
    _deployed(client, server, o["no_wait"])


def list_servers() -> None:
    """Every model server."""
    from rich.table import Table

    table = Table("NAME", "MODEL", "STATUS", "ENDPOINT", "UPDATED", box=None)
    for server in _client().model_servers.list():
        table.add_row(server.name, server.model, server.status, server.endpoint or "-",
                      ago(server.updated_at))
    console.print(table)


def describe(name: Name) -> None:
    """A model server: model, predictor, options, status, endpoint and token."""
    server = _client().model_servers.get(name)
    rows = [("name", server.name), ("model", f"{server.model} ({server.model_resource})"),
            ("predictor", f"{server.entrypoint or 'built-in MLflow pyfunc'}"
                          f"{' · ' + server.classname if server.classname else ''}"),
            ("status", server.status + (f" ({server.status_reason})"
                                        if server.status_reason else "")),
            ("endpoint", server.endpoint or "-"),
            ("token", "none needed (--public)" if server.public else server.token or "-"),
            ("options", json.dumps(server.options.model_dump(exclude_defaults=True)))]
    for key, value in rows:
        console.print(f"{key:<10} {value}", markup=False)


def logs(name: Name) -> None:
    """Serve's messages about a model server (tracebacks) and its replicas' logs."""
    console.print(_client().model_servers.logs(name), markup=False, end="")


def predict(
    name: Name,
    payload: Annotated[str | None, typer.Argument(help="The JSON payload")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the JSON payload from a file ('-': stdin)")] = None,  # noqa: E501
) -> None:
    """Send a JSON payload to the model server's endpoint; print its answer."""
    if (payload is None) == (file is None):
        raise InvalidInput("give the payload as an argument or with -f FILE (not both)")
    try:
        text = payload if payload is not None else (
            sys.stdin.read() if str(file) == "-" else Path(file).read_text())  # type: ignore[arg-type]
    except OSError as exc:
        raise InvalidInput(f"-f {file}: cannot read it ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"the payload is not JSON ({exc})") from None
    console.print(json.dumps(_client().model_servers.predict(name, data)), markup=False)


def healthcheck(name: Name) -> int:
    """Ask the predictor whether it is healthy; exit 1 when it is not."""
    health = _client().model_servers.healthcheck(name)
    healthy = bool(health.get("healthy"))
    reason = f" ({health['reason']})" if health.get("reason") else ""
    console.print(f"{name}: {'healthy' if healthy else 'unhealthy'}{reason}", markup=False)
    return 0 if healthy else 1


def update(
    ctx: typer.Context,
    name: Name,
    model: Annotated[str | None, typer.Option("--model", help="MODEL:VERSION to serve now")] = None,
    entrypoint: Annotated[str | None, typer.Option("--entrypoint", help="A new predictor file (this folder is packaged again)")] = None,  # noqa: E501
    classname: Classname = None, min_pods: MinPods = None, max_pods: MaxPods = None,
    target_requests_per_second: TargetRps = None,
    machine_type: Annotated[str | None, typer.Option("--machine-type", "-t", help="Machine type")] = None,  # noqa: E501
    node_group: NodeGroup = None, serving_group: ServingGroup = None,
    pip: Pip = [], pip_req: PipReq = None, env: Env = [],  # noqa: B006
    enable_batching: Batching = False, max_batch_size: MaxBatch = None,
    request_timeout: RequestTimeout = None, answer_timeout: AnswerTimeout = None,
    config: Config = None, from_file: FromFile = None, validate: Validate = False,
    no_wait: NoWait = False,
) -> None:
    """Change a model server's model version, predictor or options, with no downtime.

    Serve rolls the replicas over, starting new ones before the old ones stop. Waits until
    the server answers (--no-wait: return at once)."""
    from spellray.cli.run_options import merge_options

    o = merge_options(ctx, from_file)
    if o["validate"]:
        _validate(o, "--entrypoint")
        return
    client = _client()
    server = client.model_servers.update(o["name"], model=o["model"],
                                         entrypoint=o["entrypoint"], classname=o["classname"],
                                         **serving_options(o))
    _deployed(client, server, o["no_wait"])


def start_server(name: str, no_wait: bool = False) -> None:
    client = _client()
    _deployed(client, client.model_servers.start(name), no_wait)


def stop_server(name: str) -> None:
    _show(_client().model_servers.stop(name))


def remove(name: Name) -> None:
    """Remove a model server: off Ray Serve, and its record."""
    _client().model_servers.delete(name)
    console.print(f"removed model server {name}", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command("list")(list_servers)
    app.command()(describe)
    app.command()(logs)
    app.command()(predict)
    app.command()(healthcheck)
    app.command()(update)
    app.command("rm")(remove)


# -- older Spell: spell model-servers create NAME RESOURCE [ENTRYPOINT] ---------------------
legacy = typer.Typer(help="Older Spell's model-server commands (spell server ... is the "
                          "current form).", no_args_is_help=True)


@legacy.command("create")
def legacy_create(
    name: Name,
    resource: Annotated[str, typer.Argument(help="runs/42/model, uploads/x, or a link")],
    entrypoint: Annotated[str | None, typer.Argument(help="The predictor file")] = None,
    classname: Classname = None, min_pods: MinPods = None, max_pods: MaxPods = None,
    machine_type: MachineType = "CPU", public: Public = False,
) -> None:
    """Make model NAME (a new version) of RESOURCE and serve it as server NAME."""
    client = _client()
    model = client.models.create(name, resource)
    options = serving_options({"machine_type": machine_type, "min_pods": min_pods,
                               "max_pods": max_pods})
    _show(client.model_servers.serve(f"{model.name}:{model.version}", entrypoint,
                                     name=name.lower(), classname=classname, public=public,
                                     **options))
