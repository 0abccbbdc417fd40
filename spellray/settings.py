"""Every SPELLRAY_* variable and path, resolved lazily (call ``get_settings()`` when needed).

Nothing here is cached across calls on purpose: tests and the CLI start subprocesses with
different environments, and reading a few variables is cheap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPELLRAY_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".spellray")
    # Where the CLI and SDK find the server. Empty: the local server under ``home``.
    server_url: str = ""
    token: str = ""
    # Port of the local server; 0 picks the port it had last time, or a free one.
    server_port: int = 0
    database_url: str = ""
    storage_uri: str = ""
    # Ray's Jobs API (the dashboard) on the head. Never exposed beyond 127.0.0.1.
    ray_address: str = "http://127.0.0.1:8265"
    # Ports used when spellray starts the local Ray head itself.
    ray_gcs_port: int = 6379
    ray_num_cpus: int | None = None
    reconcile_interval: float = 1.0
    code_limit_mb: int = 256
    # Seconds the runner gets to save outputs after `spell stop` before Ray kills it.
    stop_grace_seconds: int = 60
    debug: bool = False
    # Object storage (s3:// storage_uri). Empty: the usual AWS_* variables, read when the
    # storage is opened (see ``resolved_storage_options``).
    storage_endpoint_url: str = ""
    storage_region: str = ""
    storage_access_key_id: str = ""
    storage_secret_access_key: str = ""
    # How long an object-storage write retries while the endpoint is unreachable, before
    # the write (and a run saving outputs) fails saying so. None: 120 s. Forwarded to runs.
    storage_retry_seconds: float | None = Field(default=None, ge=0)
    # Node-local cache of remote storage files that runs mount. None: ``home / "cache"``.
    cache_dir: Path | None = None
    cache_limit_gb: float = 20
    # MLflow, served by the server under /mlflow: its backend store (a database URI MLflow's
    # server accepts), where proxied artifacts go, and the experiment runs are logged to.
    # Empty: ``sqlite:///<home>/mlflow.db`` and ``<home>/mlflow-artifacts``.
    mlflow_tracking_uri: str = ""
    mlflow_artifacts_uri: str = ""
    mlflow_experiment: str = "spellray"
    # Ray Serve's HTTP proxy (model servers), bound to 127.0.0.1 on this port when spellray
    # starts Serve; a Serve already running keeps its own port (the server asks it).
    serve_port: int = 8000
    # TensorBoard, run by the server per set of runs (server/tensorboard/): stopped after
    # this many minutes nobody used it; its mirror of the runs' event files is refreshed
    # every tensorboard_sync_seconds while any of the runs is active.
    tensorboard_idle_minutes: float = 10
    tensorboard_sync_seconds: float = 5
    # Spell's /spell folder (runner/spell_folder.py): ``auto`` runs each command in a private
    # mount namespace with its run's folder on /spell where the node allows it; ``off`` never.
    # Read by the runner on each node (set it in the nodes' environment, or per run with -e).
    spell_folder: Literal["auto", "off"] = "auto"
    # How often the runner copies a run's live folder (--tensorboard-dir) into storage while
    # the run goes (runner/live_sync.py). Read by the runner, so -e sets it per run too.
    live_sync_seconds: float = Field(default=5.0, gt=0)
    # With auto-resume: how often the runner saves a run's new and changed outputs while it
    # goes (docs/spot.md), so a lost machine loses at most this much. Read by the runner.
    output_sync_seconds: float = Field(default=60.0, gt=0)
    # Where the runner reads the cloud's interruption notice (runner/preemption.py): a spot
    # machine type's runs ask 169.254.169.254 unless this says otherwise; set, every run asks.
    metadata_url: str | None = None
    metadata_poll_seconds: float = Field(default=5.0, gt=0)
    # Seconds between a run's hardware stats samples (runner/hardware_stats.py); 0 turns
    # them off. Read by the runner (the server passes its own value to the runs it starts;
    # -e SPELLRAY_STATS_INTERVAL_SECONDS=... sets it per run).
    stats_interval_seconds: float = Field(default=5.0, ge=0)
    # The server keeps its users' SSH keys in a marked block of this file (a cluster head's
    # ~/.ssh/authorized_keys, set by its start command), each allowed only the tunnel to the
    # server (server/authorized_keys.py). None: no file is touched (a laptop's default).
    authorized_keys_file: Path | None = None
    # Spell's variable, set inside a workflow's manager and its runs (not SPELLRAY_ prefixed).
    workflow_id: int | None = Field(default=None, validation_alias="SPELL_WORKFLOW_ID")

    @property
    def state_file(self) -> Path:
        """Where the local server records its pid, port and whether it started Ray."""
        return self.home / "server.json"

    @property
    def token_file(self) -> Path:
        return self.home / "token"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'spellray.db'}"

    def resolved_storage_uri(self) -> str:
        return self.storage_uri or str(self.home / "storage")

    def resolved_mlflow_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    def resolved_mlflow_artifacts_uri(self) -> str:
        return self.mlflow_artifacts_uri or str(self.home / "mlflow-artifacts")

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or self.home / "cache"

    @property
    def cache_limit_bytes(self) -> int:
        return int(self.cache_limit_gb * 1024**3)

    def resolved_storage_options(self) -> dict[str, str]:
        """Endpoint, region and keys for object storage: SPELLRAY_STORAGE_*, else AWS_*.

        The fallback is explicit rather than left to the AWS SDK inside pyarrow, so one rule
        holds for every pyarrow version (older ones ignore AWS_ENDPOINT_URL). Only the
        values that are set appear.
        """
        env = os.environ
        found = {
            "endpoint_url": self.storage_endpoint_url or env.get("AWS_ENDPOINT_URL_S3", "")
            or env.get("AWS_ENDPOINT_URL", ""),
            "region": self.storage_region or env.get("AWS_REGION", "")
            or env.get("AWS_DEFAULT_REGION", ""),
            "access_key_id": self.storage_access_key_id or env.get("AWS_ACCESS_KEY_ID", ""),
            "secret_access_key": self.storage_secret_access_key
            or env.get("AWS_SECRET_ACCESS_KEY", ""),
        }
        endpoint = found["endpoint_url"]
        if endpoint and "://" not in endpoint:
            found["endpoint_url"] = f"https://{endpoint}"  # boto3 and pyarrow need a scheme
        return {k: v for k, v in found.items() if v}


def get_settings() -> Settings:
    return Settings()


_STORAGE_ENV = {
    "SPELLRAY_STORAGE_URI": "storage_uri",
    "SPELLRAY_STORAGE_ENDPOINT_URL": "storage_endpoint_url",
    "SPELLRAY_STORAGE_REGION": "storage_region",
    "SPELLRAY_STORAGE_ACCESS_KEY_ID": "storage_access_key_id",
    "SPELLRAY_STORAGE_SECRET_ACCESS_KEY": "storage_secret_access_key",
    "SPELLRAY_STORAGE_RETRY_SECONDS": "storage_retry_seconds",
}


def storage_env(settings: Settings) -> dict[str, str]:
    """The SPELLRAY_STORAGE_* variables that are set, for a run's environment: the runner
    may start on any node and must reach storage the same way the server does."""
    values = {name: getattr(settings, field) for name, field in _STORAGE_ENV.items()}
    return {name: str(value) for name, value in values.items() if value not in ("", None)}
