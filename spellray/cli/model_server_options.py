"""What `spell server serve` and `update` share besides the commands: Spell's flag forms
(`--node-group`/`--serving-group` for the machine type, `--request-timeout` as the batch
wait, `--config FILE`), the options as the SDK takes them, and waiting for a server with
progress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spellray.cli.output import err
from spellray.errors import InvalidInput

if TYPE_CHECKING:
    from spellray.client import Client
    from spellray.schemas import ModelServer

NodeGroup = Annotated[str | None, typer.Option("--node-group", help="Spell's serving machine pool: the machine type the replicas run on (same as -t)")]  # noqa: E501
ServingGroup = Annotated[str | None, typer.Option("--serving-group", help="Older Spell's name for --node-group", hidden=False)]  # noqa: E501
Batching = Annotated[bool, typer.Option("--enable-batching", help="Batch requests (Serve's @serve.batch): predict gets a list (prepare, if defined, gets each request first)")]  # noqa: E501
MaxBatch = Annotated[int | None, typer.Option("--max-batch-size", help="Largest batch (default 10)")]  # noqa: E501
RequestTimeout = Annotated[int | None, typer.Option("--request-timeout", help="Milliseconds a request waits for its batch to fill (Spell's meaning; turns batching on; default 500)")]  # noqa: E501
AnswerTimeout = Annotated[int | None, typer.Option("--answer-timeout", help="Milliseconds a prediction may take before the endpoint answers 504")]  # noqa: E501
Config = Annotated[Path | None, typer.Option("--config", help="A YAML or JSON file of keyword arguments for the predictor's __init__")]  # noqa: E501
FromFile = Annotated[Path | None, typer.Option("--from-file", help="Read these options from a YAML/JSON file (long flag names; the command line wins)")]  # noqa: E501
Validate = Annotated[bool, typer.Option("--validate", help="Import the predictor here and check its class, then exit; nothing is deployed")]  # noqa: E501
NoWait = Annotated[bool, typer.Option("--no-wait", help="Return at once rather than wait until the server answers")]  # noqa: E501


def machine_type(machine: str | None, node_group: str | None,
                 serving_group: str | None) -> str | None:
    """-t, or Spell's --node-group (older: --serving-group): one machine type."""
    given = {v for v in (node_group, serving_group) if v}
    if len(given) > 1:
        raise InvalidInput("--node-group and --serving-group name the same thing; give one")
    group = given.pop() if given else None
    if group and machine and machine not in (group, "CPU"):
        raise InvalidInput(f"-t {machine} and --node-group {group} disagree; give one (the "
                           "node group is the machine type on spellray)")
    return group or machine


def read_config(path: Path | None) -> dict[str, Any] | None:
    """--config FILE: a mapping of keyword arguments (YAML, and so JSON too)."""
    if path is None:
        return None
    from spellray.cli.run_options import read_yaml

    data = read_yaml("--config", path)
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise InvalidInput(f"--config {path}: expected a mapping of names to values (the "
                           "predictor's __init__ keyword arguments)")
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"--config {path}: {exc}; use plain YAML/JSON values") from None
    return data


def serving_options(o: dict[str, Any]) -> dict[str, Any]:
    """The serving options that were given (an update changes only those), from the merged
    command-line/--from-file values ``o``."""
    from spellray.cli.runs import pairs
    from spellray.client.environment import build_environment

    given: dict[str, Any] = {
        "machine_type": machine_type(o.get("machine_type"), o.get("node_group"),
                                     o.get("serving_group")),
        "min_pods": o.get("min_pods"), "max_pods": o.get("max_pods"),
        "target_requests_per_second": o.get("target_requests_per_second"),
        "max_batch_size": o.get("max_batch_size"),
        "request_timeout_ms": o.get("request_timeout"),
        "answer_timeout_ms": o.get("answer_timeout"),
        "enable_batching": o.get("enable_batching") or None,
        "config": read_config(o.get("config")),
        "env": pairs(o["env"], "-e") if o.get("env") else None,
        "environment": build_environment(pip=o.get("pip") or [], pip_req=o.get("pip_req"))
        .model_dump() if o.get("pip") or o.get("pip_req") else None,
    }
    return {k: v for k, v in given.items() if v is not None}


def wait_ready(client: Client, server: ModelServer) -> ModelServer:
    """Wait, with a spinner, until the server answers; a failed server is an error."""
    with err.status(f"model server {server.name}: {server.status}") as status:
        def progress(now: ModelServer, waited: float) -> None:
            status.update(f"model server {now.name}: {now.status} · {waited:.0f} s "
                          "(Ctrl-C stops waiting; deploying goes on)")

        return client.model_servers.wait_ready(server.name, progress=progress)
