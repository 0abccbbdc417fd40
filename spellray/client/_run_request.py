"""What every resource that starts the user's code shares: the code package upload (content
addressed: the same bytes are never sent twice) and the checked run request that runs,
searches and model servers all build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from spellray.client._http import Api
from spellray.errors import InvalidInput, NotFound
from spellray.schemas import DEFAULT_MAX_RESUMES, Environment, GitSource, Mount, RunRequest
from spellray.settings import get_settings


def parse_mount(spec: str) -> Mount:
    """``RESOURCE[:PATH]``; PATH defaults to the resource's last name, in the working dir."""
    resource, _, path = spec.partition(":")
    resource = resource.strip().rstrip("/")
    if not resource:
        raise InvalidInput(f"the mount {spec!r} names no resource; use e.g. -m runs/42:model")
    return Mount(resource=resource, path=path or resource.rsplit("/", 1)[-1])


def upload_code(api: Api, folder: Path, limit_mb: int | None = None,
                commit_ref: str | None = None) -> dict[str, Any]:
    """Package ``folder`` (as it is in git commit ``commit_ref``, if given) and upload it
    unless the server has the same bytes already. ``limit_mb`` defaults to
    SPELLRAY_CODE_LIMIT_MB."""
    from spellray.storage.code_package import package_commit, package_folder

    if limit_mb is None:
        limit_mb = get_settings().code_limit_mb
    package = (package_commit(folder, commit_ref, limit_mb) if commit_ref
               else package_folder(folder, limit_mb))
    try:
        api.request("HEAD", f"/api/code/{package.sha256}")
    except NotFound:
        api.request("PUT", f"/api/code/{package.sha256}", content=package.data)
    return {"sha256": package.sha256, "git_commit": package.git_commit,
            "git_dirty": package.git_dirty}


def build_run_request(api: Api, command: str, *, machine_type: str = "CPU",
                  env: dict[str, str] | None = None, params: dict[str, str] | None = None,
                  description: str | None = None, labels: list[str] | None = None,
                  code_dir: Path | str | None = ".", code: dict[str, Any] | None = None,
                  code_limit_mb: int | None = None, commit_ref: str | None = None,
                  mounts: list[str] | None = None, environment: Environment | None = None,
                  github_url: str | None = None, github_ref: str | None = None,
                  idempotent: bool = False, timeout_minutes: float | None = None,
                  stop_conditions: list[str] | None = None,
                  distributed: int | None = None,
                  commit_label: str | None = None,
                  tensorboard_dir: str | None = None,
                  auto_resume: bool | None = None,
                  max_resumes: int = DEFAULT_MAX_RESUMES,
                  project: str | None = None) -> RunRequest:
    """A checked run request, its code uploaded (see ``client.runs.new``); searches send one
    as the template of their trials. ``commit_label`` (inside a workflow): the snapshot
    its `--repo LABEL=...` named is the code, nothing is uploaded. ``tensorboard_dir``: a
    folder of the run's working folder (relative, or under /spell/) that the runner copies
    into storage at runs/<id>/<it>/ as the run goes. ``auto_resume`` (None: the machine
    type's default): an interrupted run starts again from its saved outputs, up to
    ``max_resumes`` times (docs/spot.md). ``project``: the project (`spell project
    create`) the run goes in."""
    try:
        git = GitSource(url=github_url, ref=github_ref) if github_url else None
        if git is None and github_ref:
            raise InvalidInput("--github-ref needs --github-url")
        if commit_label and (git or code):
            raise InvalidInput("commit_label is the run's code: give no code or github_url "
                               "with it")
        if git is None and code is None and code_dir and not commit_label:
            code = upload_code(api, Path(code_dir), code_limit_mb, commit_ref)
        return RunRequest(
            command=command, machine_type=machine_type, env=env or {},
            params=params or {}, description=description, labels=labels or [],
            mounts=[parse_mount(m) for m in mounts or []],
            code=None if git else code,
            git=git, environment=environment or Environment(), idempotent=idempotent,
            timeout_minutes=timeout_minutes, stop_conditions=stop_conditions or [],
            distributed=distributed, commit_label=commit_label,
            tensorboard_dir=tensorboard_dir, auto_resume=auto_resume,
            max_resumes=max_resumes, project=project,
        )
    except ValidationError as exc:  # the same one-line message the server would give
        raise InvalidInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from exc
