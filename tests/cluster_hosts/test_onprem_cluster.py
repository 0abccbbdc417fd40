"""A spellray cluster on simulated hosts (hosts.py), driven through the real CLI as a user on a
laptop would: `spell cluster init onprem` and `up` (Ray's cluster launcher over SSH, for
real: the head's Ray with token auth, its autoscaler starting the worker's Ray over SSH, the
spellray server), `status`, `use` (the SSH tunnel), a run landing on the worker and its
outputs in the shared storage folder, what an outsider on the same network can reach,
`update` (a host retyped and a new one added, with no Ray restarted), `dashboard`, `down`
(nothing left on the hosts), and a worker lost mid-run.

The tests run in order, on one cluster (a module fixture); the last one brings it up again.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cluster_hosts.hosts import Host, Network, reachable
from tests.e2e.test_local_cluster import _GCS_PROBE
from tests.helpers import Spell, wait_for

CPU_TYPE = "CPU"


@dataclass
class Cluster:
    name: str
    cli: Spell
    network: Network
    storage: Path
    project: Path

    @property
    def entry(self) -> dict:
        return json.loads((self.cli.home / "clusters.json").read_text())["clusters"][self.name]

    @property
    def folder(self) -> Path:
        return self.cli.home / "clusters" / self.name

    def ok(self, *args: str) -> str:
        """The CLI's output, both streams (`spell run` says a run's states on stderr)."""
        done = self.cli(*args, cwd=self.project, timeout=600)
        assert done.returncode == 0, f"spell {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def api(self, path: str) -> httpx.Response:
        entry = self.entry
        return httpx.get(f"{entry['server_url']}{path}", timeout=30,
                         headers={"Authorization": f"Bearer {entry['token']}"})

    def status_rows(self) -> list[list[str]]:
        """`spell cluster status`'s node rows (NODE, MACHINE TYPE, STATE, IP, ...)."""
        out = self.ok("cluster", "status")
        return [line.split() for line in out.splitlines()
                if re.match(r"\s*\w{6}\.\.\w{6}\s", line)]

    def wait_for_nodes(self, hosts: int = 2) -> list[list[str]]:
        """The status rows once the head and every worker host are alive in it."""
        def all_up() -> list[list[str]] | None:
            rows = [r for r in self.status_rows() if r[2] == "alive"]
            return rows if len(rows) == hosts and "head" in {r[1] for r in rows} else None

        return wait_for(all_up, timeout=240, interval=2, what=f"{hosts} nodes in the status")

    def server_pids(self) -> list[int]:
        head = self.network["head"]
        return [pid for pid in head.pids() if "spellray.server" in _command_line(pid)]

    def leftovers(self, host: Host) -> list[str]:
        """What runs on a host besides its sshd (and the namespace's unshare)."""
        return [c for c in host.commands()
                if not c.startswith(("unshare ", "sshd: /usr/sbin/sshd"))
                # The launcher's SSH connection master, kept 10 s after its last use.
                and not c.startswith("sshd: root")]


@pytest.fixture(scope="module")
def cluster(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("onprem")
    name = f"sim{os.getpid()}"
    home, storage, project = base / "home", base / "storage", base / "project"
    for folder in (home, storage, project):
        folder.mkdir()
    # The laptop's local default (a Ray head of its own) is not used by these tests.
    cli = Spell(home=home, ray_address="http://127.0.0.1:1")
    made = Cluster(name=name, cli=cli, network=network, storage=storage, project=project)
    made.ok("cluster", "init", "onprem", "--name", name, "--storage", str(storage),
            "--head-ip", network["head"].ip, "--worker-ip", network["worker"].ip,
            "--ssh-user", "root", "--ssh-key", str(network.key))
    try:
        yield made
    finally:
        if made.entry.get("tunnel_pid"):
            cli("cluster", "down", name, timeout=600)
        # Ray's local provider keeps the hosts' state on the laptop, in Ray's temp folder.
        for suffix in ("state", "lock"):
            Path(f"/tmp/ray/cluster-{name}.{suffix}").unlink(missing_ok=True)


def test_up_brings_up_the_head_and_the_worker(cluster: Cluster) -> None:
    head, worker = cluster.network["head"], cluster.network["worker"]
    out = cluster.ok("cluster", "up", cluster.name)
    assert f"head node {head.ip}" in out and "now using it: http://127.0.0.1:" in out
    rows = cluster.wait_for_nodes()
    assert {(r[1], r[3]) for r in rows} == {("head", head.ip), (CPU_TYPE, worker.ip)}
    # The head's start commands, as they run there: Ray with its token, the dashboard on
    # 127.0.0.1, the server on the head's address.
    commands = " ".join(head.commands())
    listening = [line.split()[3] for line in head.exec("ss", "-ltnH").stdout.splitlines()]
    assert [a for a in listening if a.endswith(":8265")] == ["127.0.0.1:8265"], listening
    assert f"spellray.server --host 0.0.0.0 --port 8300 --advertise-url http://{head.ip}:8300" \
        in commands
    token = (cluster.folder / "ray_auth_token").read_text().strip()
    assert (head.home / ".ray" / "auth_token").read_text().strip() == token
    assert "raylet" in " ".join(worker.commands())


def test_a_run_lands_on_the_worker_and_its_outputs_come_back_through_the_tunnel(
        cluster: Cluster) -> None:
    worker = cluster.network["worker"]
    out = cluster.ok("run", "-t", CPU_TYPE, "hostname -I; echo made-on-$(hostname -I) > out.txt")
    assert worker.ip in out  # the log: the worker's own address
    run_id = re.search(r"run (\d+) complete", out).group(1)
    # The outputs are in the storage folder every host mounts, and reach the laptop through
    # the tunnel.
    assert "out.txt" in cluster.ok("ls", f"runs/{run_id}")
    target = cluster.project / "got"
    cluster.ok("cp", f"runs/{run_id}/out.txt", str(target))
    copied = target / "out.txt" if target.is_dir() else target
    assert copied.read_text().split() == [f"made-on-{worker.ip}"]
    assert list(cluster.storage.glob(f"runs/{run_id}/**/out.txt"))

    # `use local` closes the tunnel; `use NAME` opens a new one, and the run is still there.
    tunnel = cluster.entry["tunnel_pid"]
    assert "ssh" in _command_line(tunnel)
    assert "using local" in cluster.ok("cluster", "use", "local")
    wait_for(lambda: "ssh" not in _command_line(tunnel), timeout=30, what="the tunnel to close")
    assert f"using {cluster.name}: http://127.0.0.1:" in cluster.ok("cluster", "use",
                                                                   cluster.name)
    assert cluster.api(f"/api/runs/{run_id}").json()["status"] == "complete"


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_an_outsider_on_the_network_gets_nothing_but_ssh(cluster: Cluster) -> None:
    head, outsider = cluster.network["head"], cluster.network["outsider"]
    assert outsider.exec("bash", "-c", f"echo > /dev/tcp/{head.ip}/22").returncode == 0
    # Ray's dashboard listens on the head's 127.0.0.1 only: refused from the network.
    dashboard = outsider.exec("bash", "-c", f"echo > /dev/tcp/{head.ip}/8265")
    assert dashboard.returncode != 0 and "refused" in dashboard.stderr
    # The server is on the head's address (the workers' runners report to it): it answers
    # 401 to anyone without a token.
    api = outsider.exec(sys.executable, "-c", "import httpx,sys; print(httpx.get(sys.argv[1],"
                        " timeout=30).status_code)", f"http://{head.ip}:8300/api/runs")
    assert api.stdout.strip() == "401", api.stderr
    # Ray's GCS refuses a client without the cluster's token, and lets one with it in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    probe = ["env", *[f"{k}={v}" for k, v in env.items() if k in ("PATH", "PYTHONPATH")],
             sys.executable, "-c", _GCS_PROBE, f"{head.ip}:6379"]
    assert outsider.exec(*probe).stdout.strip() == "AuthenticationError"
    token_path = cluster.folder / "ray_auth_token"
    with_token = ["env", "RAY_AUTH_MODE=token", f"RAY_AUTH_TOKEN_PATH={token_path}", *probe[1:]]
    assert outsider.exec(*with_token).stdout.strip() == "ok"


def test_update_retypes_a_running_host_and_adds_a_new_one_without_restarting_ray(
        cluster: Cluster) -> None:
    head, worker = cluster.network["head"], cluster.network["worker"]
    spare = cluster.network.add_host("spare", sshd=True)
    nodes = {r[3]: r[0] for r in cluster.status_rows() if r[2] == "alive"}  # ip -> node
    servers, runs_before = cluster.server_pids(), cluster.ok("ps")
    assert servers
    cluster.ok("cluster", "machine-type", "add", "big", "--host", worker.ip, "-c", cluster.name)
    cluster.ok("cluster", "machine-type", "add", CPU_TYPE, "--host", spare.ip,
               "-c", cluster.name)
    out = cluster.ok("cluster", "update", cluster.name)
    assert f"cluster updated, head node {head.ip}" in out
    assert f"{worker.ip}: {CPU_TYPE} -> big" in out, out
    assert f"{spare.ip}: its Ray is not running yet; it starts as {CPU_TYPE}" in out, out

    # The head's autoscaler starts Ray on the new host; the worker keeps its Ray node (not
    # restarted) under its new type, and the head its node, server and runs.
    rows = {r[3]: r for r in cluster.wait_for_nodes(hosts=3)}
    assert {ip: r[1] for ip, r in rows.items()} == {
        head.ip: "head", worker.ip: "big", spare.ip: CPU_TYPE}
    assert rows[head.ip][0] == nodes[head.ip] and rows[worker.ip][0] == nodes[worker.ip]
    assert cluster.server_pids() == servers
    assert cluster.ok("ps").split()[:8] == runs_before.split()[:8]
    # The server knows the new type without a restart, and each type's run lands on its host.
    assert worker.ip in cluster.ok("run", "-t", "big", "hostname -I")
    assert spare.ip in cluster.ok("run", "-t", CPU_TYPE, "hostname -I")
    # Nothing changed: a second update says each host is as it should be.
    again = cluster.ok("cluster", "update", cluster.name)
    assert f"{worker.ip}: big" in again and f"{spare.ip}: {CPU_TYPE}" in again, again


def test_dashboard_tunnels_to_the_heads_dashboard(cluster: Cluster) -> None:
    dashboard = cluster.cli.popen("cluster", "dashboard", cluster.name, cwd=cluster.project)
    try:
        # Ray's launcher logs a few lines (its config cache) before the URL.
        said = ""
        while not (found := re.search(r"Ray dashboard: (http://127\.0\.0\.1:\d+)", said)):
            line = dashboard.stdout.readline()
            assert line, f"spell cluster dashboard ended: {said}{dashboard.stderr.read()}"
            said += line
        url = found.group(1)
        token = (cluster.folder / "ray_auth_token").read_text().strip()

        def answers() -> int | None:
            try:
                return httpx.get(f"{url}/api/version", timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}).status_code
            except httpx.HTTPError:
                return None

        assert wait_for(answers, timeout=60, what="the dashboard through the tunnel") == 200
        assert httpx.get(f"{url}/api/version", timeout=10).status_code == 401
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_down_leaves_nothing_running_on_the_hosts(cluster: Cluster) -> None:
    tunnel = cluster.entry["tunnel_pid"]
    out = cluster.ok("cluster", "down", cluster.name)
    assert "cluster down; using the local cluster" in out and "could not stop" not in out
    for host in (cluster.network[name] for name in ("head", "worker", "spare")):
        wait_for(lambda h=host: not cluster.leftovers(h), timeout=60,
                 what=f"nothing but sshd on {host.name}: {cluster.leftovers(host)}")
    assert not reachable(cluster.network["head"].ip, 6379)
    assert "ssh" not in _command_line(tunnel)
    assert "* local" in cluster.ok("cluster", "list")


def test_a_worker_lost_mid_run_ends_the_run_interrupted_and_the_head_keeps_serving(
        cluster: Cluster) -> None:
    cluster.ok("cluster", "up", cluster.name)  # again, after the last test's down
    # Since the update test, the CPU machine is the host that joined then ("spare").
    worker_row = next(r for r in cluster.wait_for_nodes(hosts=3) if r[1] == CPU_TYPE)
    assert worker_row[3] == cluster.network["spare"].ip
    started = cluster.cli.popen("run", "-t", CPU_TYPE, "echo started; sleep 600",
                                cwd=cluster.project)
    run_id = int(re.search(r"run (\d+)", started.stderr.readline()).group(1))
    wait_for(lambda: cluster.api(f"/api/runs/{run_id}").json()["status"] == "running",
             timeout=180, what="the run to be running")
    cluster.network.remove_host("spare")  # its processes killed, its namespace gone

    def ended() -> dict | None:
        info = cluster.api(f"/api/runs/{run_id}").json()
        return info if info["status"] not in ("running", "building", "requested") else None

    info = wait_for(ended, timeout=180, interval=1, what="the run to end")
    assert info["status"] == "interrupted", info
    node_prefix = worker_row[0].split("..")[0]
    assert f"the {CPU_TYPE} machine it ran on (node {node_prefix}" in info["status_reason"], info
    assert started.wait(timeout=120) == 4  # `spell run` exits 4 for an interrupted run
    # The head keeps serving: the run list, and the head still alive in the status.
    assert str(run_id) in cluster.ok("ps")
    assert any(r[1] == "head" and r[2] == "alive" for r in cluster.status_rows())
