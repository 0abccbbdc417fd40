"""A run's command on the runner's own node, in the runner's working folder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spellray.runner.workdir import WorkDir


class SingleLaunch:
    failure_reason: str | None = None
    interrupted_reason: str | None = None

    def __init__(self, workdir: WorkDir) -> None:
        self.workdir = workdir
        self._stats: tuple[Callable[[dict[str, Any]], None], float] | None = None

    def reserve(self) -> str | None:
        return None  # the runner's own Ray job (or Tune trial) already holds the machine type

    def sample_stats(self, record: Callable[[dict[str, Any]], None], interval: float) -> None:
        self._stats = (record, interval)

    def run(self, command: str, env: dict[str, str]) -> int:
        if self._stats is None:
            return self.workdir.run(command, env)
        from spellray.runner.hardware_stats import HardwareSampler

        sampler = HardwareSampler(self.workdir.command.pid, *self._stats)
        try:
            return self.workdir.run(command, env)
        finally:
            sampler.close()

    def stop(self) -> None:
        self.workdir.command.stop()

    def ended(self) -> bool:
        return self.workdir.command.ended()

    def save_outputs(self) -> list[str]:
        return self.workdir.save_outputs()

    def close(self) -> None:
        pass  # the folder is the runner's: it cleans it up after writing the result
