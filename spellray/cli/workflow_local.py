"""`spell workflow create --local`: the manager's command runs here, with the workflow's
token and number in its environment; its runs go to the cluster. This process reports the
manager's status, as a runner would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from spellray.cli import exit_codes
from spellray.cli.output import err, styled_status

if TYPE_CHECKING:
    from spellray.client import Client
    from spellray.schemas import Workflow

POLL_SECONDS = 1.0


def manager_env(client: Client, workflow: Workflow) -> dict[str, str]:
    assert workflow.token is not None  # a --local create answers with it
    return {**os.environ, "SPELL_WORKFLOW_ID": str(workflow.id), "SPELL_RUN": str(workflow.id),
            "SPELL_TOKEN": workflow.token, "SPELLRAY_TOKEN": workflow.token,
            "SPELLRAY_SERVER_URL": client.url}


def run_manager_here(client: Client, workflow: Workflow, command: str,
                     news: Callable[[], Workflow]) -> int:
    from spellray.client import Client as SdkClient
    from spellray.schemas import RunStatus

    manager = SdkClient(client.url, workflow.token or "")
    process = subprocess.Popen(command, shell=True, env=manager_env(client, workflow),
                               start_new_session=True)
    ended_elsewhere: RunStatus | None = None
    try:
        while process.poll() is None:
            time.sleep(POLL_SECONDS)
            status = news().status
            if status.is_terminal:  # `spell workflow kill/stop` from another terminal
                ended_elsewhere = status
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        client.workflows.kill(workflow.id)
        err.print(f"\nworkflow {workflow.id} killed (its manager ran here)")
        return exit_codes.RUN_ENDED_BY_USER
    news()
    if ended_elsewhere is None:
        code = process.returncode
        status = RunStatus.complete if code == 0 else RunStatus.failed
        reason = None if code == 0 else f"the manager exited with code {code}"
        manager.runs.report(workflow.id, status, reason, code)
    final = client.workflows.get(workflow.id)
    reason = f": {final.status_reason}" if final.status_reason else ""
    err.print(f"workflow {workflow.id} {styled_status(final.status.value)}{reason}")
    return exit_codes.for_status(final.status)
