"""A user's key opens the tunnel to the spellray server and nothing else: Debian's real sshd
(on a free loopback port, with a temporary config) reads the authorized_keys file the real
server writes (SPELLRAY_AUTHORIZED_KEYS_FILE, as on a cluster's head), and the real ssh client
tries what a key holder could.

Allowed: ``ssh -N -L`` to the server's port (the real CLI then works through it). Refused: a
command or a shell, a forward to another port or to a Unix socket, a remote (-R) forward to
a TCP port or a Unix socket, and the key once `spell keys rm` removed it. The test's sshd has
``AllowStreamLocalForwarding local``, as the head's (cluster/launcher_config.py).

Prints the figure last: ``attempts, allowed, refused, wrong``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.test_users import Cli, _cli, add_user
from tests.helpers import RaylessServer, end_process, free_port, start_rayless_server, wait_for

SSHD = Path("/usr/sbin/sshd")
pytestmark = pytest.mark.skipif(not SSHD.exists() or not shutil.which("ssh"),
                                reason="needs Debian's openssh-server and openssh-client: "
                                       "bash scripts/install_test_deps.sh")


@dataclass
class Head:
    """The cluster's head as a key holder meets it: sshd, and the server behind it."""

    server: RaylessServer
    keys_file: Path
    port: int  # sshd's
    log: Path
    known_hosts: Path

    @property
    def server_port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])

    def ssh(self, key: Path, *args: str) -> list[str]:
        return ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(key),
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR",
                *args, f"{getpass.getuser()}@127.0.0.1"]

    def denied(self, words: str) -> bool:
        return any("denied" in line and words in line
                   for line in self.log.read_text().splitlines())


def _start_sshd(folder: Path, keys_file: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(folder / "host_key")], check=True)
    port = free_port()
    config = folder / "sshd_config"
    root = os.getuid() == 0
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {keys_file}", f"PidFile {folder / 'sshd.pid'}",
        # The test's folders are under a world-writable /tmp, which StrictModes refuses.
        "StrictModes no", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "AllowStreamLocalForwarding local",
        "PermitRootLogin prohibit-password" if root else "", "LogLevel VERBOSE", ""]))
    if root:  # sshd's privilege separation needs its folder (Debian's service makes it)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)

    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"sshd exited: {log.read_text()}")
        return "Server listening" in log.read_text()

    wait_for(listening, timeout=60, what="sshd to listen")
    return process, port, log


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    folder = tmp_path_factory.mktemp("head")
    keys_file = folder / "ssh" / "authorized_keys"
    server = start_rayless_server(folder / "spellray",
                                  SPELLRAY_AUTHORIZED_KEYS_FILE=str(keys_file))
    sshd = None
    try:
        sshd, port, log = _start_sshd(folder, keys_file)
        yield Head(server=server, keys_file=keys_file, port=port, log=log,
                   known_hosts=folder / "known_hosts")
    finally:
        if sshd is not None:
            sshd.terminate()
            sshd.wait(timeout=30)
        server.stop()


@pytest.fixture(scope="module")
def alice(head: Head, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, Path]:
    """A member, her CLI, and the private key `spell keys generate` made for her."""
    admin = _cli(tmp_path_factory.mktemp("admin"), head.server.url, head.server.token)
    cli = _cli(tmp_path_factory.mktemp("alice"), head.server.url)
    cli.ok("login", "--token", add_user(admin, "alice"))
    cli.ok("keys", "generate", "--title", "laptop")
    return cli, cli.home / "keys" / "id_ed25519_laptop"


class Tunnel:
    """``ssh -N -L`` in the background, to ``target`` (host:port or a socket's path)."""

    def __init__(self, head: Head, key: Path, target: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            head.ssh(key, "-N", "-o", "ExitOnForwardFailure=yes",
                     "-L", f"127.0.0.1:{self.port}:{target}"),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> Tunnel:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"ssh exited: {self.process.stderr.read().decode()}")
            return _answers(self.port)

        wait_for(up, timeout=60, what="the ssh tunnel to listen")
        return self

    def __exit__(self, *_: object) -> None:
        # SIGKILL if SIGTERM did not end it: once, in CI, an ssh whose forward sshd had
        # refused was still there 30 s after SIGTERM. How ssh ends is not under test here.
        end_process(self.process)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def _closed(conn: socket.socket) -> bool:
    """The local end of a forward sshd refused: closed, or reset, with nothing read."""
    try:
        return conn.recv(100) == b""
    except ConnectionResetError:
        return True


def test_a_key_opens_the_tunnel_to_the_server_and_nothing_else(
        head: Head, alice: tuple[Cli, Path], tmp_path: Path) -> None:
    cli, key = alice
    results: list[tuple[str, bool, bool]] = []  # (what, allowed, as it should be)

    # The tunnel: the real CLI speaks to the server through it.
    with Tunnel(head, key, f"127.0.0.1:{head.server_port}") as tunnel:
        token = cli.logins[head.server.url]["token"]
        through = _cli(cli.home, f"http://127.0.0.1:{tunnel.port}", token)
        listed = through("keys", "list")
        results.append(("ssh -N -L to the server", listed.returncode == 0,
                        listed.returncode == 0 and "laptop" in listed.stdout))

    # A command, a shell with a terminal, a subsystem: the forced command (or no-pty, or the
    # subsystem's refusal) stops each; the witness file is never made.
    witness = tmp_path / "ran"
    said = "opens the spellray tunnel only"
    for what, flags, command, words in [
            ("ssh head true", [], ["true"], said),
            ("a command", [], ["touch", str(witness)], said),
            ("a command with a terminal", ["-tt"], ["touch", str(witness)],
             "PTY allocation request failed"),
            ("sftp", ["-s"], ["sftp"], "subsystem request failed")]:
        done = subprocess.run([*head.ssh(key, *flags), *command], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        refused = done.returncode != 0 and words in done.stderr and not witness.exists()
        results.append((what, done.returncode == 0, refused))

    # A forward to another port, and to a Unix socket: the connection is refused by sshd.
    other = socket.create_server(("127.0.0.1", 0))
    other_port = other.getsockname()[1]
    sock_path = tmp_path / "s.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(sock_path))
    unix.listen()
    try:
        for what, target, words in [
                ("ssh -L to another port", f"127.0.0.1:{other_port}",
                 f"host 127.0.0.1 port {other_port},"),
                ("ssh -L to a Unix socket", str(sock_path), f"path {sock_path}")]:
            with Tunnel(head, key, target) as tunnel, \
                    socket.create_connection(("127.0.0.1", tunnel.port), timeout=30) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                wait_for(lambda words=words: head.denied(words), timeout=60,
                         what=f"sshd to refuse {what}")
                closed = _closed(conn)
            results.append((what, not closed, closed))
    finally:
        other.close()
        unix.close()

    # Remote forwards: a TCP port on the head's loopback, and a Unix socket. Refused: ssh
    # exits saying so; let in: the port answers, or the socket is made (ssh stays).
    squat, port = tmp_path / "squat.sock", free_port()
    for what, spec, opened in [
            ("ssh -R to a TCP port", f"127.0.0.1:{port}:127.0.0.1:1", lambda: _answers(port)),
            ("ssh -R to a Unix socket", f"{squat}:127.0.0.1:1", squat.exists)]:
        ssh = subprocess.Popen(head.ssh(key, "-N", "-o", "ExitOnForwardFailure=yes", "-R", spec),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda ssh=ssh, opened=opened: ssh.poll() is not None or opened(),
                     timeout=60,
                     what=f"{what} to be refused or made")
            let_in = ssh.poll() is None or opened()
        finally:
            ssh.terminate()
            _, stderr = ssh.communicate(timeout=30)
        refused = not let_in and "forwarding failed" in stderr
        results.append((what, let_in, refused))

    # A removed key opens nothing, from the next connection on.
    cli.ok("keys", "rm", "laptop")
    done = subprocess.run(head.ssh(key, "-N", "-L", f"{free_port()}:127.0.0.1:1"),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    results.append(("the key after spell keys rm", done.returncode == 0,
                    done.returncode == 255 and "Permission denied" in done.stderr))

    wrong = [what for what, _, right in results if not right]
    for what, allowed, right in results:
        print(f"{what:30} {'allowed' if allowed else 'refused'}{'' if right else '  WRONG'}")
    allowed = sum(1 for _, a, _ in results if a)
    print(f"attempts, allowed, refused, wrong: {len(results)}, {allowed}, "
          f"{len(results) - allowed}, {len(wrong)}")
    assert not wrong, f"went wrong: {wrong}"
