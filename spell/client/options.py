"""Spell's run keyword arguments (``client.runs.new``, ``client.hyper.new_*_search``) as
spellray's run options (``spellray.client`` ``runs.new``). One function, so runs and searches
map them the same way; what spellray cannot do is refused here, before anything is sent."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from spell.api.exceptions import UnsupportedError
from spellray.client.environment import build_environment


def mounts(attached_resources: Mapping[str, str | None] | None) -> list[str]:
    """``{resource: mount_path or None}`` as spellray's ``RESOURCE[:PATH]`` mounts (None:
    the resource's last name, in the working folder, as Spell did)."""
    return [f"{resource}:{path}" if path else resource
            for resource, path in (attached_resources or {}).items()]


def run_options(*, machine_type: str = "CPU",
                attached_resources: Mapping[str, str | None] | None = None,
                pip_packages: list[str] | None = None, apt_packages: list[str] | None = None,
                requirements_file: str | None = None, conda_file: str | None = None,
                docker_image: str | None = None, framework: str | None = None,
                envvars: Mapping[str, str] | None = None, github_url: str | None = None,
                github_ref: str | None = None, cwd: str | None = None,
                idempotent: bool = False, tensorboard_directory: str | None = None,
                description: str | None = None, labels: list[str] | None = None,
                params: Mapping[str, Any] | None = None, timeout: float | None = None,
                stop_conditions: list[str] | None = None, auto_resume: bool | None = None,
                commit_label: str | None = None, distributed: int | None = None,
                project: str | None = None, command: str | None = None) -> dict[str, Any]:
    """spellray's options for Spell's keyword arguments (``command``, if given, comes back
    as the option of that name, moved into ``cwd`` when one is given)."""
    options: dict[str, Any] = {
        "machine_type": machine_type,
        "mounts": mounts(attached_resources),
        "environment": build_environment(
            pip=pip_packages, pip_req=requirements_file, apt=apt_packages,
            conda_file=conda_file, docker_image=docker_image, framework=framework),
        "env": {str(k): str(v) for k, v in (envvars or {}).items()},
        "params": {str(k): str(v) for k, v in (params or {}).items()},
        "description": description, "labels": list(labels or []),
        "github_url": github_url, "github_ref": github_ref, "idempotent": idempotent,
        "timeout_minutes": timeout, "stop_conditions": list(stop_conditions or []),
        "distributed": distributed, "tensorboard_dir": tensorboard_directory,
        "project": project,
        # As on Spell, a run has no code unless a commit label or a git repository names it.
        "code_dir": None,
    }
    if auto_resume is not None:  # None: the machine type's --default-auto-resume
        options["auto_resume"] = auto_resume
    if commit_label is not None:  # a workflow's snapshot; only inside a workflow
        options["commit_label"] = commit_label
    if command is not None:
        options["command"] = with_cwd(command, cwd)
    elif cwd is not None:
        raise UnsupportedError("cwd needs a command to run in it")
    return options


def with_cwd(command: str, cwd: str | None) -> str:
    """Spell's ``cwd`` (a folder of the code to run the command in) as a ``cd`` before it."""
    return f"cd {shlex.quote(cwd)} && {command}" if cwd else command
