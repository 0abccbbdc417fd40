"""MLflow's SQLite store after a server killed while it first made it (the chaos campaign's
find: MLflow's migrations are not one transaction on SQLite, and a half-made schema failed
every later start with "duplicate column name: step", losing every metric)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spellray.server.tracking import Tracking
from spellray.settings import Settings
from tests.helpers import wait_for

MAKE = ("import sys\nfrom spellray.server.tracking import make_new_sqlite_store_whole\n"
        "make_new_sqlite_store_whole(sys.argv[1])")


def test_a_kill_while_the_store_is_made_leaves_nothing_half_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.server import handlers

    # MLflow's server keeps one store per process: this test gets its own.
    monkeypatch.setattr(handlers, "_tracking_store", None)
    store, partial = tmp_path / "mlflow.db", tmp_path / "mlflow.db.new"
    making = subprocess.Popen([sys.executable, "-c", MAKE, f"sqlite:///{store}"])
    # The store's file exists from MLflow's first statement; its migrations take seconds.
    wait_for(lambda: partial.exists() or making.poll() is not None, timeout=120,
             interval=0.01, what="MLflow to start making its tables")
    making.kill()
    assert making.wait() != 0, "the set-up ended before the kill: nothing was cut short"
    assert partial.exists() and not store.exists()

    # The server's next start makes the store again, whole, and MLflow works on it.
    tracking = Tracking(Settings(home=tmp_path), "http://127.0.0.1:9")
    mlflow_run_id = tracking.create_run(1, "run", "true", {"lr": "0.1"})
    assert tracking._load().get_run(mlflow_run_id).data.params == {"lr": "0.1"}
    assert store.exists() and not partial.exists()
