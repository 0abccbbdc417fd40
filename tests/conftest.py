"""Session fixtures: one real Ray head on 127.0.0.1 for the whole test session, and real
spellray servers started through the real CLI."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Spell, free_port, wait_for


def _ray_up(address: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{address}/api/version", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_ray_head(tmp: Path, num_cpus: int = 8,
                   dashboard_port: int | None = None) -> tuple[subprocess.Popen, str]:
    dashboard = dashboard_port or free_port()
    args = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start",
            "--head", "--block", "--port", str(free_port()), "--dashboard-port", str(dashboard),
            "--dashboard-host", "127.0.0.1", "--node-ip-address", "127.0.0.1",
            "--num-cpus", str(num_cpus), "--disable-usage-stats",
            "--dashboard-agent-listen-port", str(free_port()),
            "--ray-client-server-port", str(free_port())]
    log = (tmp / "ray-head.log").open("ab")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    wait_for(lambda: _ray_up(address) or process.poll() is not None, 120, what="Ray head")
    assert process.poll() is None, (tmp / "ray-head.log").read_text()[-2000:]
    return process, address


def stop_ray_head(process: subprocess.Popen) -> None:
    """As `spell server stop` does: SIGTERM, then SIGKILL the group after a grace period
    (the raylet otherwise waits ~30 s for the GCS that is already gone)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, address = start_ray_head(tmp_path_factory.mktemp("ray"))
    yield address
    stop_ray_head(process)


def make_spell(tmp: Path, ray_address: str) -> Spell:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    return Spell(home=home, ray_address=ray_address)


@pytest.fixture(scope="module")
def spell(tmp_path_factory: pytest.TempPathFactory, ray_head: str) -> Iterator[Spell]:
    """A running spellray server on the session's Ray head, shared by a module's tests."""
    installation = make_spell(tmp_path_factory.mktemp("spell"), ray_head)
    started = installation("server", "start")
    assert started.returncode == 0, started.stderr
    yield installation
    installation("server", "stop")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project folder: a real git repository with a committed script."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(
        "import os, sys\n"
        "print('training in run', os.environ['SPELLRAY_RUN_ID'])\n"
        "print('a warning', file=sys.stderr)\n"
        "os.makedirs('model', exist_ok=True)\n"
        "open('model/weights.txt', 'w').write('42')\n"
    )
    (folder / ".gitignore").write_text("data/\n")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=folder, check=True)
    return folder
