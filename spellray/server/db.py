"""The state DB: SQLAlchemy 2 models and the engine. The server is its only writer.

SQLite (WAL) by default, any SQLAlchemy URL through SPELLRAY_DATABASE_URL. The schema is made
by Alembic migrations (spellray/server/migrations), never by ``create_all``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from spellray.server.run_numbers import next_run_number


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Datetimes stored as UTC and always read back timezone-aware. SQLite keeps no zone
    and hands back naive values, which every reader would otherwise have to patch up."""

    impl = DateTime(timezone=True)  # timestamptz on Postgres, the migration's type
    cache_ok = True

    def process_bind_param(self, value: datetime | None, _dialect: Any) -> datetime | None:
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, _dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}  # noqa: RUF012


class StatusEventColumns:
    """What a status history's row holds (runs, searches, model servers): one per change."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    # AUTOINCREMENT: a run number is never handed out twice, even after rows are deleted.
    # On Postgres the number comes from a counter instead (run_numbers.py: no holes).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), default="run")
    command: Mapped[str] = mapped_column(Text)
    machine_type: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    ray_submission_id: Mapped[str | None] = mapped_column(String(200), default=None)
    code_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    git_commit: Mapped[str | None] = mapped_column(String(64), default=None)
    git_dirty: Mapped[bool | None] = mapped_column(Boolean, default=None)
    environment_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    # sha256 of what makes two runs the same (code, command, environment, mounts, params,
    # machine type, env vars): what --idempotent matches on.
    identity: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    stop_requested: Mapped[str | None] = mapped_column(String(10), default=None)
    # The run's MLflow run (its metrics and params), made when the runner first asks.
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), default=None)
    # The workflow a run belongs to: its manager's number (the manager's own, for a manager).
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), default=None,
                                                    index=True)
    # A trial's search (kind "trial").
    hyper_search_id: Mapped[int | None] = mapped_column(ForeignKey("hyper_searches.id"),
                                                        default=None, index=True)
    # Whose it is: a user's or a team's name (server/ownership.py).
    owner: Mapped[str | None] = mapped_column(String(63), default=None, index=True)
    # Its project (`-p NAME`; None: uncategorized). No foreign key: SQLite cannot add one to
    # an existing table in place (migration 0016), and services/projects.py keeps it true.
    project_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    # `spell archive RUN`: out of `spell ps`, `spell ls runs/`, links and mounts.
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    # Optimistic locking: the runner's reports and the reconciler may change a run at once;
    # the later writer gets StaleDataError instead of silently overwriting.
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    labels: Mapped[list[RunLabel]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="RunLabel.label"
    )
    events: Mapped[list[RunEvent]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="RunEvent.id"
    )


@event.listens_for(Run, "before_insert")
def _number_run(_mapper: Any, connection: Any, run: Run) -> None:
    """Every run's number, however it is made, from one place (run_numbers.py)."""
    if run.id is None:
        run.id = next_run_number(connection)


class HyperSearch(Base):
    """`spell hyper grid|random|bayesian`: one Ray job driving a Tune Tuner; its trials
    are runs (``Run.hyper_search_id``). ``spec`` is the HyperRequest as submitted."""

    __tablename__ = "hyper_searches"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ray_submission_id: Mapped[str | None] = mapped_column(String(200), default=None)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whose it is: a user's or a team's name (server/ownership.py).
    owner: Mapped[str | None] = mapped_column(String(63), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)

    # Loaded when asked for (the reconciler reads searches every second, not their history).
    events: Mapped[list[HyperSearchEvent]] = relationship(
        cascade="all, delete-orphan", order_by="HyperSearchEvent.id"
    )


class HyperSearchEvent(StatusEventColumns, Base):
    """One row per status change: the search's status history."""

    __tablename__ = "hyper_search_events"

    hyper_search_id: Mapped[int] = mapped_column(ForeignKey("hyper_searches.id"), index=True)


class RunEvent(StatusEventColumns, Base):
    """One row per status change: the run's status history."""

    __tablename__ = "run_events"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)


class RunLabel(Base):
    __tablename__ = "run_labels"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    label: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Metric(Base):
    """The metric values MLflow cannot keep: text values (``send_metric("phase", "warm-up")``)
    and numbers whose name MLflow refuses. Every other number is in the run's MLflow run."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_id_name", "run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    name: Mapped[str] = mapped_column(String(250))
    index: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[float] = mapped_column(Float)
    number: Mapped[float | None] = mapped_column(Float, default=None)
    text: Mapped[str | None] = mapped_column(Text, default=None)


class User(Base):
    """A person who uses the server: `spell users add NAME`. ``role`` admin or member; the
    password (argon2, server/passwords.py) is optional: a login token works without one."""

    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="member")
    password_hash: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Team(Base):
    """`spell teams create NAME`: a name that owns things, shared by its members. Teams and
    users share one namespace: a team may not take a user's name, nor a user a team's."""

    __tablename__ = "teams"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Project(Base):
    """`spell project create NAME`: a group of runs, and the MLflow experiment of the same
    name that holds their MLflow runs (services/projects.py)."""

    __tablename__ = "projects"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # Whose it is: a user's or a team's name (server/ownership.py).
    owner: Mapped[str] = mapped_column(String(63), index=True)
    mlflow_experiment_id: Mapped[str | None] = mapped_column(String(64), default=None)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    """`spell teams add TEAM USER`."""

    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class UploadOwner(Base):
    """Whose an upload is (`spell upload`): uploads are files in storage with no row of
    their own, so their owner is kept per top-level name (uploads/NAME)."""

    __tablename__ = "upload_owners"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    """API tokens, stored hashed, each of a kind with its scopes (space separated;
    spellray/server/auth.py says what each allows). A user's tokens (kinds admin, login,
    session, access) point at the user and take their scopes from the user's role. A run's
    own token (run_id set; a workflow manager's too) is revoked when the run ends."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default="admin")
    scopes: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), default=None)
    workflow_id: Mapped[int | None] = mapped_column(Integer, default=None)
    hyper_search_id: Mapped[int | None] = mapped_column(Integer, default=None)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None,
                                                index=True)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # Written at most once a minute per token (auth.touch): not a write per request.
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    # Loaded with the token (one query per request): the role decides a user token's scopes.
    user: Mapped[User | None] = relationship(lazy="joined")


class SshKey(Base):
    """A user's public SSH key (`spell keys`): the key's ``TYPE BASE64`` only (no options,
    no comment: server/authorized_keys.py writes the line); one title per user, and a key
    belongs to one user."""

    __tablename__ = "ssh_keys"
    __table_args__ = (UniqueConstraint("user_id", "title", name="uq_ssh_keys_user_title"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    key_type: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class WorkflowRepo(Base):
    """`spell workflow create --repo LABEL=PATH[:COMMIT]` / `--github-repo LABEL=URL[:REF]`:
    what `runs.new(commit_label=LABEL)` runs on inside the workflow, fixed at creation."""

    __tablename__ = "workflow_repos"

    workflow_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    label: Mapped[str] = mapped_column(String(100), primary_key=True)
    code_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    git_url: Mapped[str | None] = mapped_column(Text, default=None)
    git_ref: Mapped[str | None] = mapped_column(Text, default=None)
    git_commit: Mapped[str | None] = mapped_column(String(64), default=None)


class QueuedRun(Base):
    """A run waiting in spellray's queue: what its Ray job will be, without secrets (its
    token and the storage credentials are added when it is submitted). The row goes when
    the run is submitted to Ray or ends while it waits."""

    __tablename__ = "run_queue"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    # Whose turn it is: FIFO per owner, fair across owners (services/run_queue.py).
    owner: Mapped[str] = mapped_column(String(100))
    machine_type: Mapped[str] = mapped_column(String(100), index=True)
    # The resources one bundle holds, and how many bundles (a --distributed run's ranks).
    demand: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    bundles: Mapped[int] = mapped_column(Integer, default=1)
    # What Ray's job gets: its entrypoint resources, entrypoint, runtime_env, variables.
    job: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)


class Workspace(Base):
    """`spell jupyter NAME`: a name, its options, and its current (or last) run of kind
    `workspace`. Its status is that run's, until Jupyter's address is reported."""

    __tablename__ = "workspaces"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    # WorkspaceOptions with every field set, and the run request's options as given.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Where the server reaches Jupyter (http://node-ip:port) and its token; set by the
    # runner once Jupyter answers, cleared when the run ends.
    address: Mapped[str | None] = mapped_column(String(200), default=None)
    jupyter_token: Mapped[str | None] = mapped_column(String(200), default=None)
    # Whose it is: a user's or a team's name (server/ownership.py).
    owner: Mapped[str | None] = mapped_column(String(63), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Link(Base):
    """`spell link NAME PATH`: a name for a resource path, resolved wherever one is accepted."""

    __tablename__ = "links"

    alias: Mapped[str] = mapped_column(String(200), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    # Whose it is: a user's or a team's name (server/ownership.py).
    owner: Mapped[str | None] = mapped_column(String(63), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyClaim(Base):
    """Which run an identity's --idempotent submissions share. The primary key makes the
    claim race-free on any database: of two concurrent submissions, one insert fails."""

    __tablename__ = "idempotency_claims"

    identity: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))


class UnfinishedTracking(Base):
    """An ended run whose MLflow side is still to finish: the metrics its runner could not
    deliver taken from storage, and its MLflow run ended (services/metrics.py
    finish_tracking). Made with the run's terminal status, in the same transaction, and
    removed once that is done, so a server killed in between, or MLflow not yet loaded,
    leaves the work to the reconciler's next tries instead of losing it."""

    __tablename__ = "unfinished_tracking"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    # When it was last tried (first: when the run ended); the reconciler waits between tries.
    tried_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Meta(Base):
    """Key/value facts about this server, such as its identity, and (Postgres) the last run
    number given (run_numbers.py)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def make_engine(url: str, whole_transactions: bool = False) -> Engine:
    """``whole_transactions`` (migrations): on SQLite, every statement of a transaction,
    DDL included, commits or rolls back together."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        if whole_transactions:
            _sqlite_whole_transactions(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # Safe with WAL (no corruption); a power cut may lose the last commits only.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Writers queue for SQLite's one write lock (up to 30 s) instead of failing with
            # "database is locked". That wait always applies here: the driver (pysqlite's
            # default mode) begins a transaction only at its first write, so no transaction
            # asks for the lock while holding an outdated read snapshot, the one case SQLite
            # refuses at once. tests/server/test_run_numbers.py puts 5 writers at once on it.
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_whole_transactions(engine: Engine) -> None:
    """SQLite's DDL is transactional, but pysqlite runs a CREATE or ALTER outside any
    transaction unless a write opened one, so Alembic assumes non-transactional DDL there
    and a server killed during a migration left a half-made schema that failed every later
    start. SQLAlchemy's documented recipe: turn the driver's own transaction handling off
    and begin each transaction ourselves. IMMEDIATE takes the write lock at once, so a
    second server starting at the same moment waits (busy_timeout) instead of failing
    half-way. Only for migrations: the server's sessions keep the driver's deferred begin
    (see ``make_engine``'s busy_timeout comment)."""

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    here = Path(__file__).parent
    config = Config()
    config.set_main_option("script_location", str(here / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")


class Model(Base):
    """`spell model create NAME[:VERSION] RESOURCE`: a name and version for a resource path."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_models_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(50))
    resource: Mapped[str] = mapped_column(Text)
    # `--file PATH[:MOUNT_PATH]`: [{"path", "mount_path"}]; None/empty: the whole resource.
    files: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    # Whose it is: a user's or a team's name (server/ownership.py).
    owner: Mapped[str | None] = mapped_column(String(63), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelServer(Base):
    """`spell server serve`: one Ray Serve application, named after the server. ``options``
    holds the serving options as asked (scaling, machine type, environment, batching)."""

    __tablename__ = "model_servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(50))
    entrypoint: Mapped[str | None] = mapped_column(Text, default=None)
    classname: Mapped[str | None] = mapped_column(String(200), default=None)
    code_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # The endpoint token: its hash goes to the replicas; the token itself is kept so
    # `spell server describe` can show it (as the admin token is kept in SPELLRAY_HOME).
    token: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whose it is: a user's or a team's name (server/ownership.py).
    owner: Mapped[str | None] = mapped_column(String(63), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Loaded when asked for, and deleted with the server.
    events: Mapped[list[ModelServerEvent]] = relationship(
        cascade="all, delete-orphan", order_by="ModelServerEvent.id"
    )


class ModelServerEvent(StatusEventColumns, Base):
    """One row per status change: the model server's status history."""

    __tablename__ = "model_server_events"

    model_server_id: Mapped[int] = mapped_column(ForeignKey("model_servers.id"), index=True)
