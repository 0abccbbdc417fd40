"""Every SPELLRAY_* variable and path, resolved lazily (call ``get_settings()`` when needed).

Nothing here is cached across calls on purpose: tests and the CLI start subprocesses with
different environments, and reading a few variables is cheap.
"""

from __future__ import annotations

from pathlib import Path

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


def get_settings() -> Settings:
    return Settings()
