"""How `spell hyper ... --follow` turns a search's end into an exit code (pure: the search
and its trials as the server describes them)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from spellray.cli import exit_codes
from spellray.cli.hyper_trials import SearchView
from spellray.schemas import HyperSearch, Run, RunStatus


def trial(run_id: int, status: str, reason: str | None = None) -> Run:
    return Run.model_construct(id=run_id, status=RunStatus(status),
                               status_reason=reason, params={})


def view(status: str, trials: list[Run], early_stop: bool = False) -> SearchView:
    shown = SearchView(client=None, search_id=1)
    shown.search = HyperSearch(id=1, kind="grid", status=status, command="echo", params=[],
                               early_stop=early_stop, created_at=datetime.now(timezone.utc))
    shown.trials = {t.id: (t, None) for t in trials}
    return shown


CASES: list[tuple[str, list[tuple[str, str | None]], bool, int]] = [
    ("complete", [("complete", None), ("complete", None)], False, exit_codes.COMPLETE),
    ("complete", [("complete", None), ("failed", "exit code 3")], False, exit_codes.RUN_FAILED),
    ("failed", [], False, exit_codes.RUN_FAILED),
    ("stopped", [("complete", None), ("stopped", "stopped by the search")], False,
     exit_codes.RUN_ENDED_BY_USER),
    ("killed", [("killed", "killed by user")], False, exit_codes.RUN_ENDED_BY_USER),
    # ASHA's stops are the search's plan, not a trial that did not complete...
    ("complete", [("complete", None), ("stopped", "stopped by the search")], True,
     exit_codes.COMPLETE),
    # ...but a --stop-condition or --timeout stop is not.
    ("complete", [("stopped", "timed out after 1 minute(s) (--timeout)")], True,
     exit_codes.RUN_ENDED_BY_USER),
]


@pytest.mark.parametrize(("status", "trials", "early_stop", "code"), CASES)
def test_exit_code(status: str, trials: list[tuple[str, Any]], early_stop: bool,
                   code: int) -> None:
    shown = view(status, [trial(i, s, r) for i, (s, r) in enumerate(trials)], early_stop)
    assert shown.ended
    assert shown.exit_code() == code


def test_not_ended_while_a_trial_runs() -> None:
    assert not view("complete", [trial(1, "saving")]).ended
    assert not view("running", [trial(1, "complete")]).ended
