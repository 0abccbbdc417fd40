"""Model servers on Ray Serve: `spell server serve | list | describe | logs | predict |
healthcheck | start NAME | stop NAME | update | rm`, and older Spell's `spell model-servers
create NAME RESOURCE`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spellray.cli.output import ago, console, err
from spellray.cli.run_flags import Env, MachineType, Pip, PipReq

if TYPE_CHECKING:
    from spellray.client import Client
    from spellray.schemas import ModelServer

Name = Annotated[str, typer.Argument(help="The model server's name")]
ServerOption = Annotated[str | None, typer.Option("--name", "-n", help="The server's name (default: the model's name); its endpoint is /NAME")]  # noqa: E501
Classname = Annotated[str | None, typer.Option("--classname", help="The predictor class (default: the only class with a predict method)")]  # noqa: E501
MinPods = Annotated[int | None, typer.Option("--min-pods", help="Fewest replicas (default 1)")]
MaxPods = Annotated[int | None, typer.Option("--max-pods", help="Most replicas: Serve autoscales between the two")]  # noqa: E501
TargetRps = Annotated[float | None, typer.Option("--target-requests-per-second", help="Requests per second one replica should take (autoscaling target)")]  # noqa: E501
Batching = Annotated[bool, typer.Option("--enable-batching", help="Batch requests (Serve's @serve.batch): predict gets a list")]  # noqa: E501
MaxBatch = Annotated[int | None, typer.Option("--max-batch-size", help="Largest batch (default 10)")]  # noqa: E501
Timeout = Annotated[int | None, typer.Option("--request-timeout", help="Milliseconds a prediction may take before a 504")]  # noqa: E501
Public = Annotated[bool, typer.Option("--public", help="No token needed to call the endpoint")]


def _client() -> Client:
    from spellray.client import from_environment

    return from_environment()


def _options(machine_type: str | None, pip: list[str], pip_req: Path | None, env: list[str],
             min_pods: int | None, max_pods: int | None, rps: float | None, batching: bool,
             max_batch_size: int | None, timeout: int | None) -> dict[str, Any]:
    """The serving options that were given (an update changes only those)."""
    from spellray.cli.runs import pairs
    from spellray.client.environment import build_environment

    given: dict[str, Any] = {
        "machine_type": machine_type, "min_pods": min_pods, "max_pods": max_pods,
        "target_requests_per_second": rps, "max_batch_size": max_batch_size,
        "request_timeout_ms": timeout, "enable_batching": batching or None,
        "env": pairs(env, "-e") if env else None,
        "environment": build_environment(pip=pip, pip_req=pip_req).model_dump()
        if pip or pip_req else None,
    }
    return {k: v for k, v in given.items() if v is not None}


def _show(server: ModelServer) -> None:
    console.print(f"model server {server.name}: {server.status} · {server.model} · "
                  f"{server.endpoint}", markup=False)


def serve(
    model: Annotated[str, typer.Argument(help="MODEL:VERSION (or MODEL: its newest version)")],
    entrypoint: Annotated[str | None, typer.Argument(help="The predictor file in this folder; leave out for a model with an MLmodel file (MLflow pyfunc)")] = None,  # noqa: E501
    name: ServerOption = None, classname: Classname = None, min_pods: MinPods = None,
    max_pods: MaxPods = None, target_requests_per_second: TargetRps = None,
    machine_type: MachineType = "CPU", pip: Pip = [],  # noqa: B006
    pip_req: PipReq = None, env: Env = [],  # noqa: B006
    enable_batching: Batching = False, max_batch_size: MaxBatch = None,
    request_timeout: Timeout = None, public: Public = False,
) -> None:
    """Serve a model on Ray Serve: spell server serve digits:v1 predictor.py.

    The folder is packaged like a run's code; the predictor class is built with the model's
    folder."""
    options = _options(machine_type, pip, pip_req, env, min_pods, max_pods,
                       target_requests_per_second, enable_batching, max_batch_size,
                       request_timeout)
    server = _client().model_servers.serve(model, entrypoint, name=name, classname=classname,
                                     public=public, **options)
    _show(server)
    err.print(f"status and token: spell server describe {server.name}")


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
    from spellray.errors import InvalidInput

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
    name: Name,
    model: Annotated[str | None, typer.Option("--model", help="MODEL:VERSION to serve now")] = None,
    entrypoint: Annotated[str | None, typer.Option("--entrypoint", help="A new predictor file (this folder is packaged again)")] = None,  # noqa: E501
    classname: Classname = None, min_pods: MinPods = None, max_pods: MaxPods = None,
    target_requests_per_second: TargetRps = None,
    machine_type: Annotated[str | None, typer.Option("--machine-type", "-t", help="Machine type")] = None,  # noqa: E501
    pip: Pip = [], pip_req: PipReq = None, env: Env = [],  # noqa: B006
    enable_batching: Batching = False, max_batch_size: MaxBatch = None,
    request_timeout: Timeout = None,
) -> None:
    """Change a model server's model version, predictor or options, with no downtime.

    Serve rolls the replicas over, starting new ones before the old ones stop."""
    options = _options(machine_type, pip, pip_req, env, min_pods, max_pods,
                       target_requests_per_second, enable_batching, max_batch_size,
                       request_timeout)
    _show(_client().model_servers.update(name, model=model, entrypoint=entrypoint,
                                   classname=classname, **options))


def start_server(name: str) -> None:
    _show(_client().model_servers.start(name))


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
    options = _options(machine_type, [], None, [], min_pods, max_pods, None, False, None, None)
    _show(client.model_servers.serve(f"{model.name}:{model.version}", entrypoint,
                               name=name.lower(), classname=classname, public=public,
                               **options))
