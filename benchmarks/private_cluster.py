"""What every benchmark needs: free ports, and a private Ray head started the way spellray
starts its local one."""

from __future__ import annotations

import socket
from pathlib import Path

from spellray.cluster.local import start_ray_head as start_local_ray_head
from spellray.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ray_head(workdir: Path, num_cpus: int) -> tuple[int, str]:
    """A private head on free 127.0.0.1 ports; returns its pid and dashboard address."""
    address = f"http://127.0.0.1:{free_port()}"
    settings = Settings(home=workdir / "ray-home", ray_address=address,
                        ray_gcs_port=free_port(), ray_num_cpus=num_cpus)
    return start_local_ray_head(settings), address
