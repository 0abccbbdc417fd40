"""Session fixtures: one real Ray head on 127.0.0.1 for the whole test session, and real
spellray servers started through the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from spellray.cluster.local import RAY_STOP_GRACE, stop_process_group
from spellray.cluster.local import start_ray_head as start_local_ray_head
from spellray.settings import Settings
from spellray.testing.ray_token import give_shared_token, share_ray_token
from tests.helpers import RaylessServer, Spell, free_port, start_rayless_server
from tests.postgres import Postgres, start_postgres
from tests.s3 import MotoS3, start_moto_server

# Seconds spent in each test group (a folder of tests), printed at the end of the session so
# CI shows what each group costs: later campaigns must say what they add.
_group_seconds: defaultdict[str, float] = defaultdict(float)


_ray_token_dir: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Every Ray head the tests start runs with Ray's token auth on, as spellray's do, and
    shares one token that the tests' own Ray clients and the CLIs they run find in the
    environment (spellray/testing/ray_token.py). Set before any test module imports Ray,
    which reads the mode once."""
    global _ray_token_dir
    _ray_token_dir = Path(tempfile.mkdtemp(prefix="spellray-test-ray-token-"))
    share_ray_token(_ray_token_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _ray_token_dir is not None:
        shutil.rmtree(_ray_token_dir, ignore_errors=True)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    folder, _, _ = report.nodeid.partition("::")
    _group_seconds[str(Path(folder).parent)] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _group_seconds:
        return
    terminalreporter.write_sep("-", "seconds per test group")
    for group, seconds in sorted(_group_seconds.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{group:<20} {seconds:8.1f}")


def start_ray_head(tmp: Path, num_cpus: int = 8,
                   dashboard_port: int | None = None) -> tuple[int, str]:
    """A private Ray head on free ports (free on every interface: Ray binds some on the
    node's own address), started by spellray's own code."""
    address = f"http://127.0.0.1:{dashboard_port or free_port('')}"
    settings = Settings(home=tmp / "ray-home", ray_address=address, ray_gcs_port=free_port(""),
                        ray_num_cpus=num_cpus)
    give_shared_token(settings.home)
    return start_local_ray_head(settings), address


def stop_ray_head(pid: int) -> None:
    stop_process_group(pid, timeout=RAY_STOP_GRACE)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pid, address = start_ray_head(tmp_path_factory.mktemp("ray"))
    yield address
    stop_ray_head(pid)


def make_spell(tmp: Path, ray_address: str) -> Spell:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    return Spell(home=home, ray_address=ray_address)


# The state database of the modules' shared server (`spell` below), in the id of every
# test using it ([sqlite] or [postgres]): SQLite, or the session's PostgreSQL with
# SPELLRAY_TEST_DATABASE=postgres. A test or module marked `both_databases` (the e2e state
# tests: runs, numbering, idempotency, searches, workflows, models) runs on each, one server
# per database per module. Servers made with make_spell stay on SQLite.
DATABASES = ("sqlite", "postgres")
DEFAULT_DATABASE = os.environ.get("SPELLRAY_TEST_DATABASE", "sqlite")
if DEFAULT_DATABASE not in DATABASES:
    raise pytest.UsageError(f"SPELLRAY_TEST_DATABASE={DEFAULT_DATABASE!r}: use one of "
                            f"{', '.join(DATABASES)}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only where the shared `spell` is used: a module that defines its own `spell` (or
    # none) never asks for `database`.
    if "database" not in metafunc.fixturenames:
        return
    # Every `spell` test gets the parameter, so an unmarked test shares its module's
    # [sqlite] server with the marked ones instead of starting a third.
    both = metafunc.definition.get_closest_marker("both_databases") is not None
    metafunc.parametrize("database", DATABASES if both else (DEFAULT_DATABASE,),
                         indirect=True, scope="module")


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> str:
    """Which database the module's shared server keeps its state in."""
    return getattr(request, "param", DEFAULT_DATABASE)


@pytest.fixture(scope="module")
def spell(tmp_path_factory: pytest.TempPathFactory, ray_head: str, database: str,
          request: pytest.FixtureRequest) -> Iterator[Spell]:
    """A running spellray server on the session's Ray head, shared by a module's tests."""
    installation = make_spell(tmp_path_factory.mktemp(f"spell-{database}"), ray_head)
    postgres: Postgres | None = (request.getfixturevalue("postgres")
                                 if database == "postgres" else None)
    if postgres is not None:
        installation.extra_env["SPELLRAY_DATABASE_URL"] = postgres.database()
    started = installation("server", "start")
    assert started.returncode == 0, started.stderr
    yield installation
    installation("server", "stop")
    if postgres is not None:
        postgres.drop(installation.extra_env["SPELLRAY_DATABASE_URL"])


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


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """A real S3 endpoint over HTTP (moto's server) for the whole session."""
    server = start_moto_server(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rayless_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaylessServer]:
    """A real spellray server with no Ray cluster behind it (tests/client, tests/cli)."""
    server = start_rayless_server(tmp_path_factory.mktemp("rayless"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server for the whole session (tests/postgres.py). Missing binaries
    fail the tests that need it, saying how to install them: .ci/run always has them."""
    try:
        server = start_postgres()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
