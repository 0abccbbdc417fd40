"""The run options `spell run` and `spell hyper ...` share, defined once (Spell's names)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

MachineType = Annotated[str, typer.Option("--machine-type", "-t", help="Machine type")]
Mounts = Annotated[list[str], typer.Option("--mount", "-m", help="RESOURCE[:PATH] to mount, e.g. runs/42/model:model (repeatable)")]  # noqa: E501
Pip = Annotated[list[str], typer.Option("--pip", help="pip package (repeatable)")]
PipReq = Annotated[Path | None, typer.Option("--pip-req", help="requirements.txt to install")]
Apt = Annotated[list[str], typer.Option("--apt", help="Debian package (repeatable)")]
CondaFile = Annotated[Path | None, typer.Option("--conda-file", help="conda environment YAML")]
DockerImage = Annotated[str | None, typer.Option("--docker-image", "--from", help="Container image to run in")]  # noqa: E501
Framework = Annotated[str | None, typer.Option("--framework", help="NAME[==VERSION]: a pip preset (pytorch, tensorflow, ...)")]  # noqa: E501
Env = Annotated[list[str], typer.Option("--env", "-e", help="NAME=VALUE (repeatable)")]
CommitRef = Annotated[str | None, typer.Option("--commit-ref", "-c", help="Run the code as it is in this git commit")]  # noqa: E501
GithubUrl = Annotated[str | None, typer.Option("--github-url", help="Take the code from this git repository")]  # noqa: E501
GithubRef = Annotated[str | None, typer.Option("--github-ref", help="Branch, tag or commit of --github-url")]  # noqa: E501
Description = Annotated[str | None, typer.Option("--description", "-d")]
Labels = Annotated[list[str], typer.Option("--label", help="Label (repeatable)")]
Timeout = Annotated[float | None, typer.Option("--timeout", help="Stop the run (saving outputs) after this many minutes of running")]  # noqa: E501
StopConditions = Annotated[list[str], typer.Option("--stop-condition", help='"METRIC OP VALUE[:MIN_INDEX]" (OP: < <= > >= ==): stop the run, saving outputs, when a metric meets it (repeatable)')]  # noqa: E501
Distributed = Annotated[int | None, typer.Option("--distributed", help="Run on N machines of the machine type, with the torch.distributed and Horovod environment set")]  # noqa: E501
TensorboardDir = Annotated[str | None, typer.Option("--tensorboard-dir", help="PATH: a folder of the run's working folder (relative, or /spell/...) whose TensorBoard files are saved as the run goes")]  # noqa: E501
Project = Annotated[str | None, typer.Option("--project", "-p", help="The project the run goes in (spell project create NAME makes one)")]  # noqa: E501
Force = Annotated[bool, typer.Option("--force", "-f", help="Skip prompts and warnings")]


# The options every trial of a search shares with `spell run` (name, flag type, default).
RUN_OPTIONS: list[tuple[str, Any, Any]] = [
    ("machine_type", MachineType, "CPU"), ("mount", Mounts, []), ("pip", Pip, []),
    ("pip_req", PipReq, None), ("apt", Apt, []), ("conda_file", CondaFile, None),
    ("docker_image", DockerImage, None), ("framework", Framework, None), ("env", Env, []),
    ("commit_ref", CommitRef, None), ("github_url", GithubUrl, None),
    ("github_ref", GithubRef, None), ("description", Description, None),
    ("label", Labels, []), ("timeout", Timeout, None),
    ("stop_condition", StopConditions, []), ("distributed", Distributed, None),
    ("tensorboard_dir", TensorboardDir, None), ("project", Project, None),
]


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command (taking ``**run``) every run option, as typer reads parameters from
    the signature: written once here instead of once per `spell hyper` kind."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=flag,
                               default=default) for name, flag, default in RUN_OPTIONS]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        return command(**kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *extra]}
    return wrapper
