"""A run request checked and turned into what a run is made of (its spec, identity, Ray
runtime_env and runner record), before any row or job exists; and where a run's files live."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from spellray.cluster.machine_types import resolve_machine_type
from spellray.schemas import GitSource, MachineType, RunRequest
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, seen_by
from spellray.server.services import environments
from spellray.server.services.code import CodeService
from spellray.server.services.idempotency import run_identity
from spellray.server.services.mounts import resolve_mounts, tensorboard_folder
from spellray.storage.git_source import resolve_remote
from spellray.storage.paths import join
from spellray.storage.store import Storage

SPELL_DIR = ".spell"


def run_dir(run_id: int) -> str:
    return join("runs", run_id)


def log_path(run_id: int) -> str:
    return join("runs", run_id, SPELL_DIR, "log")


def record_path(run_id: int) -> str:
    return join("runs", run_id, SPELL_DIR, "run.json")


def substitute_params(command: str, params: dict[str, str]) -> str:
    """Spell's `:NAME:` placeholders."""
    for name, value in params.items():
        command = command.replace(f":{name}:", value)
    return command


@dataclass(frozen=True)
class PreparedRun:
    """A checked run request, ready to become a run (or a search's template for trials)."""

    machine_type: MachineType
    git: GitSource | None
    ray_env: dict[str, Any]
    env_digest: str | None
    command: str
    identity: str
    spec: dict[str, Any]


def prepare_run(ctx: ServerContext, request: RunRequest,
                owner: str = FIRST_ADMIN) -> PreparedRun:
    """Everything a run needs, checked before anything is made: what the cluster
    cannot build, a missing code package, ref or mount fails the submission now. A run
    mounts what its ``owner`` sees (another owner's things are not there for it)."""
    machine_type = resolve_machine_type(request.machine_type, ctx.machine_types)
    if request.code:
        CodeService(ctx).require(request.code.sha256,
                                 f"code package {request.code.sha256[:12]}")
    git = request.git
    if git is not None and git.commit is None:  # fixed now: the run is what was asked
        git = GitSource(url=git.url, ref=git.ref, commit=resolve_remote(git.url, git.ref))
    ray_env = environments.runtime_env(request.environment, ctx.abilities)
    env_digest = environments.digest(request.environment)
    command = substitute_params(request.command, request.params)
    with ctx.sessions() as session:
        mounts = resolve_mounts(session, ctx.storage, request.mounts,
                                seen_by(session, owner))
    tensorboard_dir = None if request.tensorboard_dir is None else \
        tensorboard_folder(request.tensorboard_dir, mounts)
    identity = run_identity(
        code=git.commit if git else request.code and request.code.sha256, command=command,
        environment_digest=env_digest, mounts=mounts, params=request.params,
        machine_type=machine_type.name, env=request.env, distributed=request.distributed)
    spec = {"env": request.env, "params": request.params,
            "mounts": [m.model_dump() for m in mounts],
            "environment": environments.normalize(request.environment).model_dump(),
            "git": git.model_dump() if git else None,
            "timeout_minutes": request.timeout_minutes,
            "stop_conditions": request.stop_conditions}
    if request.distributed:
        spec["distributed"] = request.distributed
    if tensorboard_dir is not None:
        spec["tensorboard_dir"] = tensorboard_dir
    auto_resume = machine_type.default_auto_resume if request.auto_resume is None \
        else request.auto_resume
    if auto_resume:  # the run's own choice, or its machine type's default
        spec["auto_resume"], spec["max_resumes"] = True, request.max_resumes
    return PreparedRun(machine_type=machine_type, git=git, ray_env=ray_env,
                       env_digest=env_digest, command=command, identity=identity,
                       spec=spec)


def write_record(storage: Storage, run_id: int, request: RunRequest,
                 prepared: PreparedRun, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """runs/<id>/.spell/run.json: what the runner reads (it needs no server to run), with
    ``extra`` (a workspace's Jupyter); the record written."""
    spec = prepared.spec
    record = {
        "id": run_id, "command": prepared.command,
        "machine_type": prepared.machine_type.name, "params": request.params,
        "code": request.code.model_dump() if request.code else None,
        "git": spec["git"], "mounts": spec["mounts"], "apt": spec["environment"]["apt"],
        "environment_digest": prepared.env_digest,
        "timeout_minutes": request.timeout_minutes,
        "stop_conditions": request.stop_conditions,
        "tensorboard_dir": spec.get("tensorboard_dir"),
        # The runner saves outputs as the run goes (runner/workdir.py), and a resumed run
        # starts with the outputs of the run it resumes.
        "auto_resume": bool(spec.get("auto_resume")),
        "spot": prepared.machine_type.spot,  # the runner watches for the cloud's notice
        "resumed_from": spec.get("resumed_from"),
        **distributed_record(request, prepared.machine_type),
        **(extra or {}),
    }
    storage.write_bytes(record_path(run_id), json.dumps(record, indent=2).encode())
    return record


def distributed_record(request: RunRequest, machine_type: MachineType) -> dict[str, Any]:
    """What the runner of a --distributed run reads: the rank count and each rank's share."""
    if not request.distributed:
        return {}
    return {"distributed": request.distributed, "machine": machine_type.model_dump()}
