"""What every benchmark needs: free ports, and a private Ray head started the way spellray
starts its local one, with Ray's token auth on."""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from spellray.cluster.local import RAY_STOP_GRACE, stop_process_group
from spellray.cluster.local import start_ray_head as start_local_ray_head
from spellray.ports import free_port as free_port  # the benchmarks' import of it
from spellray.settings import Settings
from spellray.testing.ray_token import give_shared_token, share_ray_token

if TYPE_CHECKING:
    from spellray.client import Client

# One Ray token for the benchmark's heads, its own Ray clients and the CLIs it runs (they
# inherit this process's environment), set on import: before the benchmark imports Ray,
# which reads the mode once.
_TOKEN_DIR = Path(tempfile.mkdtemp(prefix="spellray-bench-ray-token-"))
share_ray_token(_TOKEN_DIR)
atexit.register(shutil.rmtree, _TOKEN_DIR, ignore_errors=True)


def start_ray_head(workdir: Path, num_cpus: int) -> tuple[int, str]:
    """A private head on free 127.0.0.1 ports; returns its pid and dashboard address."""
    pid, address, _ = start_ray_head_with_gcs(workdir, num_cpus)
    return pid, address


def start_ray_head_with_gcs(workdir: Path, num_cpus: int) -> tuple[int, str, str]:
    """The same, also returning the GCS address, for `ray.init` in the benchmark itself."""
    address, gcs_port = f"http://127.0.0.1:{free_port('')}", free_port("")
    settings = Settings(home=workdir / "ray-home", ray_address=address,
                        ray_gcs_port=gcs_port, ray_num_cpus=num_cpus)
    give_shared_token(settings.home)
    return start_local_ray_head(settings), address, f"127.0.0.1:{gcs_port}"


SPELL_CLI = [sys.executable, "-m", "spellray.cli.main"]


def tear_down(env: dict[str, str], head: int | None, workdir: Path,
              keep_logs: bool = False) -> None:
    """Stop the spellray server of ``env``, then the private head, and delete the workdir;
    ``keep_logs`` (a failed measurement) keeps it, for the Ray and server logs inside."""
    subprocess.run([*SPELL_CLI, "server", "stop"], env=env, capture_output=True, timeout=60,
                   check=False)
    if head is not None:
        stop_process_group(head, timeout=RAY_STOP_GRACE)
    if keep_logs:
        print(f"logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def bench_workdir() -> tuple[Path, Path, dict[str, str]]:
    """A fresh workdir with a one-line project, and an environment with only our own
    SPELLRAY_HOME (an inherited server URL or home would skew the numbers)."""
    import os
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="spellray-bench-"))
    project = workdir / "project"
    project.mkdir()
    (project / "train.py").write_text("print('hi')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    env["SPELLRAY_HOME"] = str(workdir / "home")
    return workdir, project, env


def start_server(env: dict[str, str]) -> Client:
    """`spell server start` under ``env`` (its SPELLRAY_HOME and SPELLRAY_RAY_ADDRESS), and
    an SDK client of that server."""
    import json

    from spellray.client import Client

    subprocess.run([sys.executable, "-m", "spellray.cli.main", "server", "start"], env=env,
                   check=True, capture_output=True, timeout=300)
    home = Path(env["SPELLRAY_HOME"])
    port = json.loads((home / "server.json").read_text())["port"]
    return Client(f"http://127.0.0.1:{port}", (home / "token").read_text().strip())
