"""Model servers: one Ray Serve application each, deployed, updated and removed through
Serve's declarative REST API (serve_api.py); their status follows Serve's
(reconcile/model_servers.py), their logs are Serve's and the replicas'.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.cluster.machine_types import resolve_machine_type
from spellray.errors import Conflict, InvalidInput, NotFound, SpellrayError
from spellray.schemas import (
    ModelServer,
    ModelServerRequest,
    ModelServerStatus,
    ModelServerUpdate,
    ServingOptions,
)
from spellray.serve.names import DEPLOYMENT
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, owned_by, sees
from spellray.server.serve_api import ServeApi
from spellray.server.services import environments, model_server_config
from spellray.server.services.code import CodeService
from spellray.server.services.model_server_status import (
    DEPLOYED,
    change_model_server_status,
    serve_messages,
)
from spellray.server.services.models import find_model
from spellray.settings import storage_env
from spellray.storage.paths import join

# One PUT at a time: each carries every application, built from the DB as it is then.
_APPLY_LOCK = threading.Lock()
LOG_LINES = 200


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _seconds(ms: int | None) -> float | None:
    return ms / 1000 if ms else None


def _not_found(name: str) -> NotFound:
    return NotFound(f"there is no model server {name}; spell server list shows them")


def to_schema(server: db.ModelServer, resource: str, endpoint: str | None = None,
              with_token: bool = False) -> ModelServer:
    return ModelServer(
        name=server.name, model=f"{server.model_name}:{server.model_version}",
        model_resource=resource, entrypoint=server.entrypoint, classname=server.classname,
        status=server.status, status_reason=server.status_reason, public=server.public,
        token=server.token if with_token and not server.public else None, endpoint=endpoint,
        options=ServingOptions.model_validate(server.options or {}),
        created_at=server.created_at, updated_at=server.updated_at)


class ModelServerService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.serve = ServeApi(ctx.settings.ray_address)

    def _load(self, session: Session, name: str) -> db.ModelServer:
        server = session.scalars(select(db.ModelServer)
                                 .where(db.ModelServer.name == name)).first()
        if server is None:
            raise _not_found(name)
        return server

    # -- Serve's config, from the DB ------------------------------------------------------
    def _application(self, session: Session, server: db.ModelServer) -> dict[str, Any]:
        options = ServingOptions.model_validate(server.options or {})
        model = find_model(session, f"{server.model_name}:{server.model_version}")
        fields = environments.runtime_env(options.environment, self.ctx.abilities)
        env_vars = {**options.env, **storage_env(self.ctx.settings)}
        runtime_env = {**fields, "env_vars": env_vars} if env_vars else fields
        args = {
            "storage_uri": self.ctx.storage.uri, "model_resource": model.resource,
            "model": f"{model.name}:{model.version}", "code_sha256": server.code_sha256,
            "entrypoint": server.entrypoint, "classname": server.classname,
            "token_hash": None if server.public else server.token_hash,
            "model_files": {f["path"]: f["mount_path"] for f in model.files or []},
            "config": options.config,
            "batching": options.batching, "max_batch_size": options.max_batch_size,
            "batch_wait_s": _seconds(options.request_timeout_ms),
            "answer_timeout_s": _seconds(options.answer_timeout_ms),
            # Changes with every update/start, so Serve redeploys (rolling) even when the
            # rest is as before: `spell server start` of a failed server tries again.
            "revision": server.updated_at.isoformat(),
        }
        machine_type = resolve_machine_type(options.machine_type, self.ctx.machine_types)
        return model_server_config.application(server.name, args, options, machine_type,
                                               runtime_env)

    def apply(self, removed: str | None = None) -> None:
        """PUT every deployed server's application, and keep the applications of other
        spellray servers sharing this Ray cluster (Serve would delete them otherwise).
        ``removed``: a server whose record is gone, so its application is not kept."""
        with _APPLY_LOCK:
            with self.ctx.sessions() as session:
                servers = session.scalars(select(db.ModelServer)).all()
                ours = {s.name for s in servers} | {removed}
                apps = [self._application(session, s) for s in servers
                        if ModelServerStatus(s.status) in DEPLOYED]
            current = self.serve.details().get("applications") or {}
            for name, app in current.items():
                if name not in ours and app.get("source") == "declarative" and \
                        app.get("deployed_app_config"):
                    apps.append(app["deployed_app_config"])
            self.serve.apply(model_server_config.deploy_config(apps, self.ctx.settings.serve_port))

    def _apply_or_fail(self, name: str) -> None:
        try:
            self.apply()
        except SpellrayError as exc:
            with self.ctx.sessions() as session:
                change_model_server_status(session, self._load(session, name),
                                           ModelServerStatus.failed, exc.message)
                session.commit()
            raise

    def endpoint(self, name: str, details: dict[str, Any] | None = None) -> str:
        """The server's URL on Serve's proxy: the port Serve really has, if it runs."""
        options = (details or {}).get("http_options") or {}
        port = options.get("port") or self.ctx.settings.serve_port
        return f"http://127.0.0.1:{port}/{name}"

    # -- create, read ---------------------------------------------------------------------
    def _check(self, session: Session, model_ref: str, entrypoint: str | None,
               code_sha256: str | None, options: ServingOptions) -> db.Model:
        model = find_model(session, model_ref)
        resolve_machine_type(options.machine_type, self.ctx.machine_types)
        environments.runtime_env(options.environment, self.ctx.abilities)
        if options.max_pods is not None and options.max_pods < options.min_pods:
            raise InvalidInput("--max-pods must be at least --min-pods")
        if options.max_batch_size is not None and not options.batching:
            raise InvalidInput("--max-batch-size needs --enable-batching (or --request-timeout)")
        if entrypoint:
            CodeService(self.ctx).require(code_sha256, "the predictor's code package")
        elif not self.ctx.storage.exists(join(model.resource, "MLmodel")) and not any(
                f.get("mount_path") == "MLmodel" for f in model.files or []):
            raise InvalidInput(f"model {model.name}:{model.version} has no MLmodel file, so the "
                               "built-in MLflow predictor cannot serve it; give a predictor "
                               "file: spell server serve MODEL:VERSION predictor.py")
        return model

    def create(self, request: ModelServerRequest, owner: str = FIRST_ADMIN,
               owners: frozenset[str] | None = None) -> ModelServer:
        code_sha = request.code.sha256 if request.code else None
        token = secrets.token_urlsafe(24)
        with self.ctx.sessions() as session:
            model = self._check(session, request.model, request.entrypoint, code_sha,
                                request.options)
            if not sees(owners, model.owner):  # another owner's model: as if it were not
                raise NotFound(f"there is no model {request.model}; spell model list shows "
                               "the models")
            if session.scalars(select(db.ModelServer.id)
                               .where(db.ModelServer.name == request.name)).first():
                raise Conflict(f"a model server named {request.name} exists already; "
                               "use spell server update, or another name")
            server = db.ModelServer(
                name=request.name, model_name=model.name, model_version=model.version,
                entrypoint=request.entrypoint, classname=request.classname,
                code_sha256=code_sha, options=request.options.model_dump(mode="json"),
                status=ModelServerStatus.deploying.value, token=token,
                token_hash=hash_token(token), public=request.public, owner=owner)
            session.add(server)
            session.flush()
            session.add(db.ModelServerEvent(model_server_id=server.id, status=server.status))
            session.commit()
        self._apply_or_fail(request.name)
        return self.get(request.name)

    def get(self, name: str, with_token: bool = False,
            details: dict[str, Any] | None = None) -> ModelServer:
        with self.ctx.sessions() as session:
            server = self._load(session, name)
            resource = find_model(session, f"{server.model_name}:{server.model_version}").resource
            return to_schema(server, resource, self.endpoint(name, details), with_token)

    def describe(self, name: str) -> ModelServer:
        try:
            details = self.serve.details()
        except SpellrayError:
            details = None  # the record is still worth showing while Ray is down
        return self.get(name, with_token=True, details=details)

    def list(self, owners: frozenset[str] | None = None) -> list[ModelServer]:
        """The model servers ``owners`` see (None: everyone's)."""
        with self.ctx.sessions() as session:
            names = session.scalars(select(db.ModelServer.name)
                                    .where(owned_by(db.ModelServer.owner, owners))
                                    .order_by(db.ModelServer.name)).all()
        return [self.get(name) for name in names]

    # -- change ---------------------------------------------------------------------------
    def update(self, name: str, change: ModelServerUpdate) -> ModelServer:
        with self.ctx.sessions() as session:
            server = self._load(session, name)
            options = ServingOptions.model_validate({**(server.options or {}), **change.options})
            entrypoint = change.entrypoint or server.entrypoint
            code_sha = change.code.sha256 if change.code else server.code_sha256
            model_ref = change.model or f"{server.model_name}:{server.model_version}"
            model = self._check(session, model_ref, entrypoint, code_sha, options)
            server.model_name, server.model_version = model.name, model.version
            server.entrypoint, server.code_sha256 = entrypoint, code_sha
            server.classname = change.classname or server.classname
            server.options = options.model_dump(mode="json")
            change_model_server_status(session, server, ModelServerStatus.deploying)
            server.updated_at = db.utcnow()
            session.commit()
        self._apply_or_fail(name)
        return self.get(name)

    def start(self, name: str) -> ModelServer:
        return self._set_deployed(name, True)

    def stop(self, name: str) -> ModelServer:
        return self._set_deployed(name, False)

    def _set_deployed(self, name: str, deployed: bool) -> ModelServer:
        with self.ctx.sessions() as session:
            server = self._load(session, name)
            current = ModelServerStatus(server.status)
            if deployed == (current in DEPLOYED) and current != ModelServerStatus.failed:
                raise Conflict(f"model server {name} is {server.status} already")
            if deployed:
                change_model_server_status(session, server, ModelServerStatus.deploying)
            else:
                change_model_server_status(session, server, ModelServerStatus.stopped,
                                           "stopped by user")
            server.updated_at = db.utcnow()
            session.commit()
        self._apply_or_fail(name)
        return self.get(name)

    def delete(self, name: str) -> None:
        with self.ctx.sessions() as session:
            session.delete(self._load(session, name))
            session.commit()
        self.apply(removed=name)

    # -- logs -----------------------------------------------------------------------------
    def logs(self, name: str, lines: int = LOG_LINES) -> str:
        """Serve's messages about the server, then each replica's log (live ones, and the
        replicas that died recently: a predictor that failed to load)."""
        server = self.get(name)
        app = (self.serve.details().get("applications") or {}).get(name)
        if app is None:
            return f"model server {name} is {server.status}: {server.status_reason or ''}\n"
        parts = [f"== Serve: application {name} is {app.get('status')}"]
        if (messages := serve_messages(app)):
            parts.append(messages)
        deployment = (app.get("deployments") or {}).get(DEPLOYMENT) or {}
        replicas = [*(deployment.get("replicas") or []),
                    *(deployment.get("recent_dead_replicas") or [])]
        for replica in replicas:
            if not replica.get("log_file_path") or not replica.get("node_id"):
                continue
            text = self.serve.log_file(replica["node_id"],
                                       replica["log_file_path"].lstrip("/"), lines)
            if text.strip():
                parts.append(f"== replica {replica.get('replica_id')} ({replica.get('state')})")
                parts.append(text.rstrip())
        return "\n".join(parts) + "\n"
