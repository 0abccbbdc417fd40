"""The spellray SDK: speaks HTTP to the server, nothing else (the CLI is a layer over it)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from spellray.errors import (
    InvalidInput,
    NotFound,
    ServerUnavailable,
    SpellrayError,
    Unauthorized,
    error_for_code,
)
from spellray.schemas import (
    Environment,
    EnvironmentLog,
    GitSource,
    LogChunk,
    Mount,
    OutputFile,
    Run,
    RunList,
    RunRequest,
    ServerInfo,
)
from spellray.settings import Settings, get_settings


class _Api:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"})

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnavailable:
        return ServerUnavailable(
            f"the spellray server at {self.url} is not answering ({exc.__class__.__name__});"
            " start it with: spell server start"
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise _error_from(response)
        if method == "HEAD" or not response.content:
            return None
        return response.json()

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A request whose answer is read in pieces (file downloads), with the same errors."""
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from(response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc


def _error_from(response: httpx.Response) -> SpellrayError:
    try:
        error = response.json()["error"]
        return error_for_code(error["code"], error["message"])
    except (ValueError, KeyError, TypeError):
        if response.status_code == 401:
            return Unauthorized("the server refused the token")
        if response.status_code == 404:  # HEAD answers carry no body
            return NotFound(f"{response.request.url.path} was not found on the server")
        return SpellrayError(f"the server answered {response.status_code}: {response.text[:200]}")


class Runs:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def upload_code(self, folder: Path, limit_mb: int | None = None,
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
            self._api.request("HEAD", f"/api/code/{package.sha256}")
        except SpellrayError as exc:
            if exc.code != "not_found":
                raise
            self._api.request("PUT", f"/api/code/{package.sha256}", content=package.data)
        return {"sha256": package.sha256, "git_commit": package.git_commit,
                "git_dirty": package.git_dirty}

    def build_request(self, command: str, *, machine_type: str = "CPU",
                      env: dict[str, str] | None = None, params: dict[str, str] | None = None,
                      description: str | None = None, labels: list[str] | None = None,
                      code_dir: Path | str | None = ".", code: dict[str, Any] | None = None,
                      code_limit_mb: int | None = None, commit_ref: str | None = None,
                      mounts: list[str] | None = None, environment: Environment | None = None,
                      github_url: str | None = None, github_ref: str | None = None,
                      idempotent: bool = False, timeout_minutes: float | None = None,
                      stop_conditions: list[str] | None = None,
                      distributed: int | None = None) -> RunRequest:
        """A checked run request, its code uploaded (see ``new``); searches send one as the
        template of their trials."""
        try:
            git = GitSource(url=github_url, ref=github_ref) if github_url else None
            if git is None and github_ref:
                raise InvalidInput("--github-ref needs --github-url")
            if git is None and code is None and code_dir:
                code = self.upload_code(Path(code_dir), code_limit_mb, commit_ref)
            return RunRequest(
                command=command, machine_type=machine_type, env=env or {},
                params=params or {}, description=description, labels=labels or [],
                mounts=[parse_mount(m) for m in mounts or []],
                code=None if git else code,
                git=git, environment=environment or Environment(), idempotent=idempotent,
                timeout_minutes=timeout_minutes, stop_conditions=stop_conditions or [],
                distributed=distributed,
            )
        except ValidationError as exc:  # the same one-line message the server would give
            raise InvalidInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from exc

    def new(self, command: str, **options: Any) -> Run:
        """Start a run of ``command`` with the code in ``code_dir`` (default "."; None: no
        code), or with ``code`` that ``upload_code`` already uploaded, or as it is in git
        commit ``commit_ref``, or from the git repository at ``github_url`` (at
        ``github_ref``, default its HEAD), which the runner fetches. ``mounts`` are Spell's
        ``RESOURCE[:PATH]`` strings; ``environment`` comes from
        ``spellray.environment_spec.build_environment``. With ``idempotent``, an identical
        run that is active or complete is returned instead of a new one.
        ``stop_conditions`` are ``"METRIC OP VALUE[:MIN_INDEX]"``
        (spellray.schemas.stop_conditions): the run stops, saving outputs, when one is met.
        The options are ``build_request``'s."""
        body = self.build_request(command, **options)
        return Run.model_validate(self._api.request("POST", "/api/runs",
                                                    json=body.model_dump(mode="json")))

    def get(self, run_id: int) -> Run:
        return Run.model_validate(self._api.request("GET", f"/api/runs/{run_id}"))

    def list(self, limit: int = 50, label: str | None = None) -> RunList:
        params: dict[str, Any] = {"limit": limit}
        if label:
            params["label"] = label
        return RunList.model_validate(self._api.request("GET", "/api/runs", params=params))

    def logs(self, run_id: int, offset: int = 0, wait: float = 0) -> LogChunk:
        """The log from byte ``offset``; ``wait`` seconds (long poll) for something new."""
        params = {"offset": offset, "wait": wait}
        return LogChunk.model_validate(
            self._api.request("GET", f"/api/runs/{run_id}/logs", params=params))

    def follow(self, run_id: int, offset: int = 0, wait: float = 5.0) -> Iterator[LogChunk]:
        """Log chunks as they come, until the run has ended and its log is read to the end."""
        while True:
            chunk = self.logs(run_id, offset, wait)
            offset = chunk.offset
            yield chunk
            if chunk.finished:
                return

    def wait(self, run_id: int, poll: float = 0.2) -> Run:
        while not (run := self.get(run_id)).status.is_terminal:
            time.sleep(poll)
        return run

    def environment_log(self, run_id: int) -> EnvironmentLog:
        """The tail of the log of the run's environment build (Ray's runtime_env set-up)."""
        return EnvironmentLog.model_validate(
            self._api.request("GET", f"/api/runs/{run_id}/environment-log"))

    def outputs(self, run_id: int) -> list[OutputFile]:
        data = self._api.request("GET", f"/api/runs/{run_id}/outputs")
        return [OutputFile.model_validate(item) for item in data]

    def kill(self, run_id: int) -> Run:
        return Run.model_validate(self._api.request("POST", f"/api/runs/{run_id}/kill"))

    def stop(self, run_id: int) -> Run:
        return Run.model_validate(self._api.request("POST", f"/api/runs/{run_id}/stop"))

    def label(self, run_id: int, label: str, remove: bool = False) -> Run:
        method = "DELETE" if remove else "PUT"
        return Run.model_validate(self._api.request(method, f"/api/runs/{run_id}/labels/{label}"))


def parse_mount(spec: str) -> Mount:
    """``RESOURCE[:PATH]``; PATH defaults to the resource's last name, in the working dir."""
    resource, _, path = spec.partition(":")
    resource = resource.strip().rstrip("/")
    if not resource:
        raise InvalidInput(f"the mount {spec!r} names no resource; use e.g. -m runs/42:model")
    return Mount(resource=resource, path=path or resource.rsplit("/", 1)[-1])


class Client:
    def __init__(self, url: str, token: str) -> None:
        from spellray.hyper_client import HyperSearches
        from spellray.metrics_client import Metrics
        from spellray.models_client import Models
        from spellray.resources_client import Links, Resources
        from spellray.servers_client import Servers

        self._api = _Api(url, token)
        self.url = self._api.url
        self.runs = Runs(self._api)
        self.resources = Resources(self._api)
        self.links = Links(self._api)
        self.metrics = Metrics(self._api)
        self.hyper = HyperSearches(self._api, self.runs)
        self.models = Models(self._api)
        self.servers = Servers(self._api, self.runs)
        from spellray.cluster_client import Cluster

        self.cluster = Cluster(self._api)

    def info(self) -> ServerInfo:
        return ServerInfo.model_validate(self._api.request("GET", "/api/info"))


def from_environment(settings: Settings | None = None, start: bool = True) -> Client:
    """A client for the server this environment points at.

    Inside a run (and wherever SPELLRAY_SERVER_URL is set) that server; else the cluster
    chosen with `spell cluster use`; otherwise the local one under SPELLRAY_HOME, started on
    first use when ``start`` is true.
    """
    settings = settings or get_settings()
    if settings.server_url:
        token = settings.token  # SPELLRAY_TOKEN; inside a run, the run's own token
        if not token and settings.token_file.exists():
            token = settings.token_file.read_text().strip()
        return Client(settings.server_url, token)
    from spellray.cluster.registry import selected_cluster

    cluster = selected_cluster(settings.home)  # `spell cluster use NAME`
    if cluster is not None:
        return Client(cluster.server_url, cluster.token)
    from spellray.cluster.local import ensure_local_server, local_server_url

    url = ensure_local_server(settings) if start else local_server_url(settings)
    if url is None:
        raise ServerUnavailable("the local spellray server is not running; "
                                "start it with: spell server start")
    return Client(url, settings.token_file.read_text().strip())
