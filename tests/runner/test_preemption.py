"""The interruption notice as AWS and GCP give it, from a fake metadata server over HTTP;
and the runner's own Ray node, from its raylet's command line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from spellray.runner.preemption import NoticeWatch, notice, own_node_id
from spellray.testing.fake_metadata import FakeMetadata
from tests.helpers import wait_for


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_no_notice_until_the_cloud_says_so(cloud: str) -> None:
    server = FakeMetadata(cloud)
    try:
        assert notice(server.url) is None
        server.announce()
        said = notice(server.url)
        assert said == ("AWS spot/instance-action: terminate at 2026-12-07T08:00:00Z"
                        if cloud == "aws" else "GCP instance/preempted: TRUE")
    finally:
        server.stop()


def test_nothing_listening_is_no_notice() -> None:
    from spellray.ports import free_port

    assert notice(f"http://127.0.0.1:{free_port()}") is None


def test_the_watch_calls_once_on_notice() -> None:
    server = FakeMetadata("aws")
    heard: list[str] = []
    came = threading.Event()
    watch = NoticeWatch(server.url, 0.05, lambda said: (heard.append(said), came.set()))
    try:
        watch.start()
        server.announce()
        assert came.wait(60)
        watch.close()
        assert len(heard) == 1 and heard[0].startswith("AWS spot/instance-action: terminate")
    finally:
        watch.close()
        server.stop()


def test_own_node_id_is_read_from_the_raylets_command_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in "raylet": a process whose command line names a node id, as Ray's does.
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)",
                             "--node_id=abc123"])
    try:
        # Until it has exec'd, the child's command line is still this test's (seen once in CI).
        wait_for(lambda: b"--node_id=abc123" in Path(f"/proc/{fake.pid}/cmdline").read_bytes(),
                 what="the stand-in raylet to start")
        monkeypatch.setenv("RAY_RAYLET_PID", str(fake.pid))
        assert own_node_id() == "abc123"
        monkeypatch.delenv("RAY_RAYLET_PID")
        assert own_node_id() is None  # no raylet among this test's parents
    finally:
        fake.kill()
        fake.wait()


def test_own_node_id_is_found_among_the_parents() -> None:
    # A stand-in raylet whose child (the "runner") asks: found by walking up the parents.
    code = ("import subprocess, sys; print(subprocess.run([sys.executable, '-c', "
            "'from spellray.runner.preemption import own_node_id; print(own_node_id())'], "
            "capture_output=True, text=True).stdout.strip())")
    done = subprocess.run([sys.executable, "-c", code, "--node_id=beef42"],
                          capture_output=True, text=True, env={**os.environ,
                                                               "RAY_RAYLET_PID": ""})
    assert done.stdout.strip() == "beef42", done.stderr
