"""A spellray server on Ray's fake multi-node cluster, for the campaigns that kill its nodes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spellray.schemas import MachineType
from spellray.testing.fake_cluster import FakeCluster, start_fake_cluster
from tests.helpers import Spell


@contextmanager
def spell_on_fake_cluster(folder: Path, machine_type: MachineType,
                          head_env: dict[str, str] | None = None
                          ) -> Iterator[tuple[FakeCluster, Spell]]:
    """The fake cluster with ``machine_type``'s machines and a server that knows the type;
    both stopped after, however the test ended. ``head_env``: more of the head's
    environment (its autoscaler's settings)."""
    cluster = start_fake_cluster(folder / "fake", [machine_type], idle_timeout_minutes=1,
                                 head_env=head_env)
    home = folder / "home"
    home.mkdir()
    (home / "machine_types.json").write_text(
        "[" + machine_type.model_dump_json(exclude_none=True) + "]")
    spell = Spell(home=home, ray_address=cluster.dashboard_address)
    try:
        started = spell("server", "start")
        assert started.returncode == 0, started.stderr
        yield cluster, spell
    finally:
        spell("server", "stop")
        cluster.stop()
