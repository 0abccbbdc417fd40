"""Starting the embedded cluster's processes: one that never becomes ready is stopped, not
left running where no state file records it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spellray.cluster import local
from spellray.errors import ServerUnavailable


def test_a_process_that_never_gets_ready_is_stopped(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "START_TIMEOUT", 1.0)
    log = tmp_path / "never-ready.log"
    process = local._spawn([sys.executable, "-c", "import time; time.sleep(600)"], log)
    with pytest.raises(ServerUnavailable, match="did not start within"):
        local._wait_until(lambda: False, process, "a head that never answers", log)
    assert process.wait(timeout=30) is not None
    assert not local.pid_alive(process.pid)
