"""The spellray server: FastAPI over the state DB, storage and Ray's Jobs API."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from spellray.cluster.machine_types import MachineTypeFile
from spellray.server import db
from spellray.server.auth import authorize, ensure_admin_token
from spellray.server.browser_sessions import BrowserGate, BrowserSessions
from spellray.server.console.app import create_console
from spellray.server.console.gate import CONSOLE
from spellray.server.context import ServerContext
from spellray.server.error_handlers import add_error_handlers
from spellray.server.openapi import use_error_schema
from spellray.server.ray_dashboard_gate import RAY_DASHBOARD
from spellray.server.ray_jobs import RayJobs
from spellray.server.reconcile import Reconciler
from spellray.server.reverse_proxy import ReverseProxy
from spellray.server.routers import (
    access_tokens,
    cluster,
    code,
    console,
    hyper,
    info,
    keys,
    links,
    metrics,
    model_servers,
    models,
    projects,
    resources,
    runs,
    stats,
    teams,
    tensorboard,
    users,
    workflows,
    workspaces,
)
from spellray.server.services.keys import install_keys_at_start
from spellray.server.tensorboard.boards import TensorBoards
from spellray.server.tensorboard.gate import TENSORBOARD
from spellray.server.tensorboard.run_sets import resolve
from spellray.server.tracking import Tracking
from spellray.server.tracking_gate import MLFLOW
from spellray.server.workspace_gate import WORKSPACES
from spellray.settings import Settings, get_settings
from spellray.storage.public_data import seed_public
from spellray.storage.store import Storage
from spellray.web import STATIC_DIR

log = logging.getLogger("spellray.server")


def _server_id(sessions) -> str:
    """A stable identity for this server's DB: part of every Ray submission id, so two
    servers sharing one Ray cluster never collide."""
    with sessions() as session:
        row = session.get(db.Meta, "server_id")
        if row is None:
            row = db.Meta(key="server_id", value=uuid.uuid4().hex)
            session.add(row)
            session.commit()
        return row.value


def build_context(settings: Settings, advertise_url: str,
                  listen_port: int | None = None) -> ServerContext:
    url = settings.resolved_database_url()
    db.migrate(url)
    sessions = db.make_session_factory(db.make_engine(url))
    with sessions() as session:
        ensure_admin_token(session, settings.token_file)
    storage = Storage(settings.resolved_storage_uri(), settings)
    seed_public(storage)
    return ServerContext(
        settings=settings, sessions=sessions,
        storage=storage, ray=RayJobs(settings.ray_address),
        server_id=_server_id(sessions), advertise_url=advertise_url,
        machine_types=MachineTypeFile(settings.home),
        tracking=Tracking(settings, advertise_url), listen_port=listen_port,
    )


def _tensorboards(ctx: ServerContext) -> TensorBoards:
    settings = ctx.settings
    return TensorBoards(ctx.storage, settings.home,
                        lambda wanted: resolve(ctx, wanted, strict=False),
                        idle_seconds=settings.tensorboard_idle_minutes * 60,
                        sync_seconds=settings.tensorboard_sync_seconds)


def create_app(advertise_url: str, settings: Settings | None = None,
               listen_port: int | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ctx = build_context(settings, advertise_url, listen_port)
        install_keys_at_start(app.state.ctx)  # the head's authorized_keys, when it has one
        reconciler = Reconciler(app.state.ctx)
        reconciler.start()  # picks up runs that were active before a restart
        app.state.ctx.tracking.warm_up()  # MLflow takes seconds to import: not on the way up
        app.state.tensorboards = _tensorboards(app.state.ctx)
        log.info("spellray server %s started at %s", app.state.ctx.server_id, advertise_url)
        yield
        reconciler.stop()
        app.state.tensorboards.stop_all()
        await app.state.reverse_proxy.aclose()

    # Every route: the token, checked against the scope the route declares (server/auth.py).
    app = FastAPI(title="spellray", lifespan=lifespan, dependencies=[Depends(authorize)])
    # One router per resource; GET /api/cluster is `spell cluster status`.
    for module in (runs, workflows, code, info, resources, links, metrics, stats, hyper,
                   models, model_servers, cluster, tensorboard, workspaces, console, users,
                   teams, access_tokens, keys, projects):
        app.include_router(module.router)
    # What browsers see, behind the same tokens or one login (a one-time link's cookie):
    # MLflow's API and UI under /mlflow, TensorBoards under /tensorboard, each workspace's
    # Jupyter under /workspaces/NAME (its own login).
    app.state.browser_sessions = BrowserSessions()
    app.state.reverse_proxy = ReverseProxy()
    # The console at / (its pages, with its own cookie and CSRF tokens); its static files
    # (our CSS and script, vendored htmx and uPlot) are public, outside the gate.
    app.state.console_app = create_console(app.state)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BrowserGate,
                       paths=[CONSOLE, MLFLOW, TENSORBOARD, WORKSPACES, RAY_DASHBOARD])

    add_error_handlers(app)
    use_error_schema(app)
    return app
