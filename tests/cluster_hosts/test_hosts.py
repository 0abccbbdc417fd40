"""The simulated hosts themselves: each is reached over SSH on its own address with the test's
key, sees only its own processes, has its own home, and the outsider reaches the others'
addresses (it is on the same network) but runs no sshd."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cluster_hosts.hosts import Network, _run, make_network, reachable


def test_hosts_are_separate_machines_on_one_network(network: Network) -> None:
    head, worker, outsider = network["head"], network["worker"], network["outsider"]
    for host in (head, worker):
        done = network.ssh(host, "hostname -I; echo $HOME; ls -a ~; ps -e -o pid=,comm=")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.split()
        assert lines[0] == host.ip  # its one address (lo has none in hostname -I)
        assert ".bashrc" in done.stdout  # the host's own home, made by the test
        # Its own PID namespace: sshd is process 1, nothing of this machine's is seen.
        assert "1 sshd" in " ".join(lines) and "pytest" not in done.stdout
    assert network.ssh(head, f"ping -c1 -W2 {worker.ip} >/dev/null || "
                             f"bash -c 'echo > /dev/tcp/{worker.ip}/22'").returncode == 0
    # The outsider is on the network: it reaches the head's sshd, and runs none itself.
    assert outsider.exec("bash", "-c", f"echo > /dev/tcp/{head.ip}/22").returncode == 0
    assert not reachable(outsider.ip, 22)
    # A wrong key is refused: the key is what lets one in.
    wrong = network.folder / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)],
                   check=True)
    refused = subprocess.run(["ssh", "-F", "/dev/null", "-i", str(wrong), "-o",
                              "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o",
                              "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                              f"root@{head.ip}", "true"], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_a_network_that_fails_half_way_is_torn_down(tmp_path: Path) -> None:
    """The second host's namespace cannot be made (a '/' in its name): what was made (the
    bridge, the first host and its sshd) is gone when the error comes out."""
    tag = f"{os.getpid() % 100000}f"
    with pytest.raises(subprocess.CalledProcessError) as failed:
        make_network(tmp_path, [("head", True), ("a/b", False)], tag=tag)
    assert "netns" in " ".join(failed.value.cmd)
    assert (tmp_path / "head" / "sshd.log").read_text()  # the first host's sshd did start
    assert f"sr{tag}-" not in _run("ip", "netns", "list").stdout
    assert f"srb{tag}" not in _run("ip", "-o", "link").stdout
