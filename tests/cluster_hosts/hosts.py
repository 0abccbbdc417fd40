"""Simulated hosts on this machine: each a network namespace with its own address on a
private bridge, its own PID and mount namespaces (so `ray stop` and `pkill` on a host see only
that host's processes, as on a real machine), its own home folder (over /root) and Ray
temporary folder (over /tmp/ray), and, if it is to be reached, an sshd on its address
admitting one key the test makes. Everything else of the file system is shared, as a
cluster image (and an NFS folder) would be: the same Python environment is on every host.

The machine running the test is the laptop: it holds the bridge's first address, so it
reaches the hosts, and nothing routes from the hosts anywhere else.

Teardown kills every process in the namespaces (whatever started them), then deletes the
namespaces and the bridge; it runs even when setup failed half way.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import wait_for

SSHD = Path("/usr/sbin/sshd")
_networks = itertools.count()
NEEDS = ("ip", "unshare", "ssh", "ssh-keygen", "rsync")


def _keep_python(home: Path) -> str:
    """Mounts that keep this Python visible under a host's own home, when it lives under
    this machine's (pyenv in /root/.pyenv): part of the image, not of the home."""
    real_home = Path("/root")
    python = Path(sys.base_prefix).resolve()
    if not python.is_relative_to(real_home):
        return ""
    top = real_home / python.relative_to(real_home).parts[0]
    return f"mkdir -p {home / top.name} && mount --bind {top} {home / top.name} && "


def missing() -> str | None:
    """Why simulated hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "simulated hosts need root (network, PID and mount namespaces)"
    absent = [tool for tool in NEEDS if not shutil.which(tool)]
    if not SSHD.exists():
        absent.append(str(SSHD))
    if absent:
        return f"simulated hosts need {', '.join(absent)}: bash scripts/install_test_deps.sh"
    return None


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no interface of this machine is on."""
    used = [ipaddress.ip_interface(word).network for line in
            _run("ip", "-o", "-4", "addr", "show").stdout.splitlines()
            for word in line.split()[3:4]]
    for third in range(os.getpid() % 200, os.getpid() % 200 + 200):
        candidate = ipaddress.ip_network(f"10.{180 + third // 250}.{third % 250}.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise RuntimeError("no free 10.x.y.0/24 for the simulated hosts")


@dataclass
class Host:
    name: str  # short: head, worker, outsider
    netns: str
    ip: str
    folder: Path  # home/, ray_tmp/, sshd files
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.folder / "home"

    def exec(self, *args: str, check: bool = False,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command in the host's network namespace (not its PID namespace: enough for
        reaching ports as this host)."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *args], capture_output=True,
                              text=True, check=check, timeout=timeout)

    def pids(self) -> list[int]:
        return [int(p) for p in _run("ip", "netns", "pids", self.netns,
                                     check=False).stdout.split()]

    def commands(self) -> list[str]:
        """The command lines of every process on the host."""
        found = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes()
                             .replace(b"\0", b" ").decode().strip())
        return found

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Network:
    bridge: str
    subnet: ipaddress.IPv4Network
    key: Path  # the private key every sshd admits
    folder: Path
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return str(self.subnet[1])

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    # -- making ------------------------------------------------------------------------------

    def add_host(self, name: str, sshd: bool) -> Host:
        index = len(self.hosts) + 2
        tag = self.bridge.removeprefix("srb")
        host = Host(name=name, netns=f"sr{tag}-{name}", ip=str(self.subnet[index]),
                    folder=self.folder / name)
        self.hosts[name] = host  # before it exists: teardown deletes what was made
        veth, peer = f"srv{tag}{name[0]}", f"srp{tag}{name[0]}"
        _run("ip", "netns", "add", host.netns)
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", veth, "master", self.bridge, "up")
        _run("ip", "link", "set", peer, "netns", host.netns)
        inside = ["ip", "netns", "exec", host.netns, "ip"]
        _run(*inside, "link", "set", "lo", "up")
        _run(*inside, "link", "set", peer, "name", "eth0")
        _run(*inside, "addr", "add", f"{host.ip}/{self.subnet.prefixlen}", "dev", "eth0")
        _run(*inside, "link", "set", "eth0", "up")
        if sshd:
            self._start_sshd(host)
        return host

    def _start_sshd(self, host: Host) -> None:
        home, ray_tmp, sshd_d = host.home, host.folder / "ray_tmp", host.folder / "sshd_d"
        for folder in (home / ".ssh", ray_tmp, sshd_d):
            folder.mkdir(parents=True, exist_ok=True)
        (home / ".ssh" / "authorized_keys").write_text(
            Path(f"{self.key}.pub").read_text())
        # The cluster image: this test's Python environment first on PATH, for the login
        # shells Ray's launcher runs its commands in (bash --login -i).
        env_lines = [f"export PATH={Path(sys.executable).parent}:$PATH"]
        if os.environ.get("PYTHONPATH"):
            env_lines.append(f"export PYTHONPATH={os.environ['PYTHONPATH']}")
        (home / ".bashrc").write_text("\n".join(env_lines) + "\n")
        (home / ".profile").write_text(". ~/.bashrc\n")
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host.folder / "host_key"))
        config = host.folder / "sshd_config"
        config.write_text("\n".join([
            "Port 22", f"ListenAddress {host.ip}", f"HostKey {host.folder / 'host_key'}",
            "AuthorizedKeysFile .ssh/authorized_keys", "PidFile none",
            # Under /tmp (world-writable), which StrictModes refuses.
            "StrictModes no", "UsePAM no", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "AllowStreamLocalForwarding local", "MaxStartups 100", "MaxSessions 100",
            "LogLevel VERBOSE", ""]))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        log = host.folder / "sshd.log"
        # The host's own home, Ray folder and sshd drop-in folder (the head's setup may
        # write there), then sshd as the PID namespace's first process: when the namespace's
        # unshare dies (--kill-child), the kernel ends every process of the host.
        boot = (f"{_keep_python(home)}mount --rbind {home} /root && mkdir -p /tmp/ray"
                f" && mount --bind {ray_tmp} /tmp/ray"
                f" && {{ [ ! -d /etc/ssh/sshd_config.d ] ||"
                f" mount --bind {sshd_d} /etc/ssh/sshd_config.d; }}"
                f" && exec {SSHD} -D -e -f {config}")
        with log.open("wb") as out:
            host.sshd = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--pid", "--fork",
                 "--mount-proc", "--propagation", "private", "--kill-child=SIGKILL",
                 "sh", "-c", boot], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

        def listening() -> bool:
            if host.sshd is not None and host.sshd.poll() is not None:
                raise AssertionError(f"sshd on {host.name} exited: {log.read_text()}")
            return "Server listening" in log.read_text()

        wait_for(listening, timeout=60, what=f"sshd on {host.name} to listen")

    # -- using -------------------------------------------------------------------------------

    def ssh(self, host: Host, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
             "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             f"root@{host.ip}", command],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    def remove_host(self, name: str) -> None:
        """The host's processes killed, its namespace deleted (its veth goes with it)."""
        host = self.hosts[name]
        if host.sshd is not None:
            host.sshd.kill()
            host.sshd.wait(timeout=30)
        host.kill_all()
        wait_for(lambda: not host.pids(), timeout=60, what=f"{name}'s processes to end")
        _run("ip", "netns", "del", host.netns, check=False)

    def teardown(self) -> None:
        for name in list(self.hosts):
            try:
                self.remove_host(name)
            except Exception as exc:  # keep going: the bridge must still go
                print(f"teardown of {name}: {exc}", file=sys.stderr)
        _run("ip", "link", "del", self.bridge, check=False)


def make_network(folder: Path, names: list[tuple[str, bool]],
                 tag: str | None = None) -> Network:
    """A bridge and one host per (name, runs sshd). Torn down here if making fails.
    ``tag`` names the bridge (srbTAG) and namespaces (srTAG-NAME); default: unique to this
    process and call (interface names are at most 15 characters)."""
    tag = tag or f"{os.getpid() % 100000}{next(_networks)}"
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "id_ed25519"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    network = Network(bridge=f"srb{tag}", subnet=_free_subnet(), key=key, folder=folder)
    try:
        _run("ip", "link", "add", network.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{network.gateway}/{network.subnet.prefixlen}", "dev",
             network.bridge)
        _run("ip", "link", "set", network.bridge, "up")
        for name, sshd in names:
            network.add_host(name, sshd)
    except BaseException:
        network.teardown()
        raise
    return network


def reachable(ip: str, port: int, timeout: float = 3) -> bool:
    try:
        socket.create_connection((ip, port), timeout=timeout).close()
        return True
    except OSError:
        return False
