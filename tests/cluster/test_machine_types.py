"""The server's machine types follow machine_types.json as `spell cluster update` syncs it to
the head: a new type is there without a server restart, a half-written file changes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from spellray.cluster.machine_types import MachineTypeFile


def _write(home: Path, names: list[str], stamp: int) -> None:
    path = home / "machine_types.json"
    path.write_text(json.dumps([{"name": n, "num_cpus": 1} for n in names]))
    os.utime(path, ns=(stamp, stamp))  # rsync keeps the laptop's times: any change counts


def test_the_machine_types_follow_the_file(tmp_path: Path) -> None:
    types = MachineTypeFile(tmp_path)
    assert sorted(types) == ["CPU"]  # no file: the default
    _write(tmp_path, ["T4"], 10**18)
    assert sorted(types) == ["CPU", "T4"] and types["T4"].name == "T4"
    _write(tmp_path, ["T4", "big"], 10**18 + 1)
    assert sorted(types) == ["CPU", "T4", "big"] and "big" in types and len(types) == 3

    (tmp_path / "machine_types.json").write_text('[{"name": "half')  # mid-sync
    assert sorted(types) == ["CPU", "T4", "big"]
    _write(tmp_path, ["big"], 10**18 + 2)
    assert sorted(types) == ["CPU", "big"]
    (tmp_path / "machine_types.json").unlink()
    assert sorted(types) == ["CPU"]
