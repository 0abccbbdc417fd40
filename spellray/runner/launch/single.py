"""A run's command on the runner's own node, in the runner's working folder."""

from __future__ import annotations

from spellray.runner.workdir import WorkDir


class SingleLaunch:
    failure_reason: str | None = None

    def __init__(self, workdir: WorkDir) -> None:
        self.workdir = workdir

    def reserve(self) -> str | None:
        return None  # the runner's own Ray job (or Tune trial) already holds the machine type

    def run(self, command: str, env: dict[str, str]) -> int:
        return self.workdir.run(command, env)

    def stop(self) -> None:
        self.workdir.command.stop()

    def ended(self) -> bool:
        return self.workdir.command.ended()

    def save_outputs(self) -> list[str]:
        return self.workdir.save_outputs()

    def close(self) -> None:
        pass  # the folder is the runner's: it cleans it up after writing the result
