"""A real PostgreSQL server for the tests: Debian's binaries, a new cluster in a temporary
folder, on a free 127.0.0.1 port, stopped and removed at the end of the session.

PostgreSQL refuses to run as root; when the tests run as root (CI does), the server runs as
the unprivileged ``nobody`` through ``subprocess``'s own ``user=``/``group=``: no sudo, no
user made on the machine, and the cluster's folder is the only thing handed to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import psycopg

from spellray.ports import free_port
from tests.helpers import wait_for

SUPERUSER = "spellray"
# Who runs the server when the tests run as root.
UNPRIVILEGED_USER = "nobody"
INSTALL_HINT = ("run scripts/install_test_deps.sh (it installs Debian's postgresql), or put "
                "PostgreSQL's initdb and postgres on PATH")


def find_binaries() -> tuple[str, str]:
    """(initdb, postgres): from PATH, else Debian's /usr/lib/postgresql/<version>/bin (the
    newest), where Debian's package puts them without linking them onto PATH."""
    initdb = shutil.which("initdb")
    if initdb is None:
        candidates = sorted(glob("/usr/lib/postgresql/*/bin/initdb"),
                            key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit()
                            else 0)
        initdb = candidates[-1] if candidates else None
    if initdb is None:
        raise RuntimeError(f"PostgreSQL's initdb was not found on PATH nor in "
                           f"/usr/lib/postgresql/*/bin: {INSTALL_HINT}")
    # postgres beside the initdb found (the same version), else on PATH.
    postgres = str(Path(initdb).resolve().parent / "postgres")
    if not os.access(postgres, os.X_OK):
        postgres = shutil.which("postgres") or ""
    if not postgres:
        raise RuntimeError(f"PostgreSQL's postgres was not found beside {initdb}: {INSTALL_HINT}")
    return initdb, postgres


@dataclass
class Postgres:
    """A running PostgreSQL cluster: ``database()`` makes a new, empty database on it."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    databases: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL spellray takes in SPELLRAY_DATABASE_URL."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                               dbname="postgres", autocommit=True)

    def database(self, template: str | None = None) -> str:
        """A new database (a copy of ``template``, if given); its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self._admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"'
                               + (f' TEMPLATE "{template}"' if template else ""))
        self.databases.append(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a database ``database()`` made, closing what is still connected to it."""
        name = url.rsplit("/", 1)[1]
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.remove(name)

    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are ended, nothing is waited for), then remove
        the cluster's folder."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _run_as() -> dict[str, object]:
    """Popen's arguments that drop root for PostgreSQL; none for anyone else."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam(UNPRIVILEGED_USER)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [],
            "env": {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}}


def _owned_folder() -> Path:
    """A new folder the server's user owns, outside pytest's own temporary folders (those
    are private to the user running the tests, so ``nobody`` could not reach them)."""
    root = os.geteuid() == 0
    # As root, /tmp itself: TMPDIR may be a folder of root's that ``nobody`` cannot enter.
    folder = Path(tempfile.mkdtemp(prefix="spellray-postgres-", dir="/tmp" if root else None))
    if root:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


def start_postgres() -> Postgres:
    """initdb a new cluster and start its server; return once it takes connections."""
    initdb, postgres = find_binaries()
    run_as = _run_as()
    folder = _owned_folder()
    data = folder / "data"
    made = subprocess.run(
        [initdb, "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
         "--locale=C", "--no-sync"],
        cwd=folder, capture_output=True, text=True, **run_as)  # type: ignore[call-overload]
    if made.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({made.returncode}): {made.stderr.strip()}")
    port = free_port()
    log = folder / "postgres.log"
    log.touch()
    if run_as:
        os.chown(log, run_as["user"], run_as["group"])  # type: ignore[arg-type]
    with log.open("ab") as out:
        # Durability off: a test cluster is thrown away, and fsyncs are most of its cost.
        process = subprocess.Popen(
            [postgres, "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", "unix_socket_directories=", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=300"],
            cwd=folder, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            **run_as)  # in the tests' process group: a Ctrl-C stops it too  # type: ignore[call-overload]
    server = Postgres(folder=folder, port=port, process=process)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"postgres exited ({process.returncode}):\n{server.log()}")
        try:
            server._admin().close()
            return True
        except psycopg.OperationalError:
            return False

    try:
        wait_for(up, timeout=60, interval=0.1, what="PostgreSQL to take connections")
    except BaseException:
        server.stop()
        raise
    return server

