"""Spell's keyword arguments as spellray's options, and the pieces of ``spell`` that need no
server: search specs, log entries, what is refused and why."""

from __future__ import annotations

from pathlib import Path

import pytest

import spell.client
from spell.api.exceptions import ClientException, UnsupportedError, WaitError
from spell.api.models import LOG, RangeSpec, ValueSpec
from spell.client.hyper import _params
from spell.client.options import mounts, run_options
from spell.client.runs import RunsService
from spell.metrics import SpellMetricWarning, send_metric
from spellray.errors import InvalidInput, SpellrayError
from spellray.schemas import Environment


def test_every_spell_keyword_maps_onto_a_spellray_option(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pinned\nnumpy==1.26\n")
    options = run_options(
        command="python train.py", machine_type="K80", cwd="src dir",
        attached_resources={"runs/1/model": "/spell/model", "uploads/data": None},
        pip_packages=["tqdm"], apt_packages=["ffmpeg"], requirements_file=str(requirements),
        docker_image="python:3.11", framework="pytorch", envvars={"SEED": 1},
        github_url="https://github.com/o/r", github_ref="main", idempotent=True,
        description="d", labels=["a"], params={"lr": 0.1}, timeout=30,
        stop_conditions=["loss < 0.1"], distributed=2, tensorboard_directory="/spell/tb",
        project="mnist")
    assert options == {
        "command": "cd 'src dir' && python train.py", "machine_type": "K80",
        "mounts": ["runs/1/model:/spell/model", "uploads/data"],
        "environment": Environment(pip=["tqdm"], pip_requirements=["numpy==1.26"],
                                   apt=["ffmpeg"], docker_image="python:3.11",
                                   framework="pytorch"),
        "env": {"SEED": "1"}, "params": {"lr": "0.1"}, "description": "d", "labels": ["a"],
        "github_url": "https://github.com/o/r", "github_ref": "main", "idempotent": True,
        "timeout_minutes": 30, "stop_conditions": ["loss < 0.1"], "distributed": 2,
        "project": "mnist",
        "tensorboard_dir": "/spell/tb", "code_dir": None}


def test_auto_resume_is_passed_only_when_given() -> None:
    # Not given: the machine type's --default-auto-resume decides, on the server.
    assert "auto_resume" not in run_options(command="true")
    assert run_options(command="true", auto_resume=True)["auto_resume"] is True
    assert run_options(command="true", auto_resume=False)["auto_resume"] is False


def test_commit_label_is_passed_only_when_given() -> None:
    assert "commit_label" not in run_options(command="true")
    assert run_options(command="true", commit_label="main")["commit_label"] == "main"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"requirements_file": "/nonexistent/req.txt"}, "no such file"),
])
def test_what_spellray_cannot_do_is_one_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        run_options(command="true", **kwargs)


def test_unknown_keywords_and_no_command_are_refused_before_any_request() -> None:
    runs = RunsService(client=None)  # type: ignore[arg-type]  # never reached
    with pytest.raises(InvalidInput, match="give the command to run"):
        runs.new(machine_type="CPU")
    with pytest.raises(TypeError, match="gpu"):
        runs.new(command="true", gpu="K80")
    with pytest.raises(UnsupportedError, match="not both"):
        runs.list(project="p", show_uncategorized=True)


def test_mounts_default_to_the_resources_name() -> None:
    assert mounts({"runs/3": None, "uploads/x": "in"}) == ["runs/3", "uploads/x:in"]
    assert mounts(None) == []


def test_search_specs_become_spellrays() -> None:
    assert _params({"lr": RangeSpec(0.001, 1, scaling=LOG), "n": ValueSpec([1, "b"]),
                    "k": [3, 4]}) == {"lr": "0.001:1:log:float", "n": [1, "b"], "k": [3, 4]}
    with pytest.raises(InvalidInput, match="ValueSpec"):
        _params({"lr": 0.1})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput, match="non-empty list"):
        _params({"x": ValueSpec([])})


def test_spells_constants_and_exceptions() -> None:
    runs = spell.client.RunsService
    assert set(runs.FINAL) == {"complete", "failed", "build_failed", "mount_failed",
                               "interrupted", "killed", "stopped"}
    assert (runs.EQUALS, runs.LESS_THAN, runs.LESS_THAN_EQUALS, runs.GREATER_THAN,
            runs.GREATER_THAN_EQUALS) == ("eq", "lt", "lte", "gt", "gte")
    assert ClientException is SpellrayError and issubclass(WaitError, ClientException)


def test_active_workflow_is_none_outside_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPELL_WORKFLOW_ID", raising=False)
    client = spell.client.SpellClient(api=object())  # type: ignore[arg-type]
    assert client.active_workflow is None


def test_spell_send_metric_is_spellrays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPELLRAY_METRICS_FILE", str(tmp_path / "m.jsonl"))
    with pytest.warns(SpellMetricWarning, match="is not a number"):
        send_metric("acc", object())
    send_metric("note", "hello")
    assert '"value": "hello"' in (tmp_path / "m.jsonl").read_text()


def test_waits_for_statuses_spellray_does_not_have_are_refused() -> None:
    from spell.client.runs import Run, _status

    run = Run(client=None, record=None)  # type: ignore[arg-type]  # never reached
    with pytest.raises(InvalidInput, match="'machine_requested' is not a run status"):
        run.wait_status("machine_requested")
    with pytest.raises(InvalidInput, match="at least one status"):
        run.wait_status()
    with pytest.raises(InvalidInput, match="unknown condition 'below'"):
        run.wait_metric("loss", "below", 1)
    assert [_status(s).value for s in ("pushing", "build_failed", "mount_failed")] == [
        "saving", "failed", "failed"]
