"""Chaos: the S3 endpoint goes away for 20 s while a run uploads its outputs. The run either
retries and completes, or fails saying storage was unreachable; never is a half-written object
listed as an output. Prints the figure.

Two outcomes, one test each: the default retry window (120 s) outlasts the outage and the
run completes; a 3 s window (SPELLRAY_STORAGE_RETRY_SECONDS) does not, and the run fails
saying storage was unreachable.

The endpoint is a proxy in front of moto's server (tests/chaos/outage_proxy.py): moto keeps
its buckets in memory, so a restarted moto would come back empty; taking the proxy's port
down and back up is the outage, with the bucket intact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.chaos.outage_proxy import OutageProxy
from tests.helpers import Spell
from tests.s3 import MotoS3

pytestmark = pytest.mark.campaign

PREFIX = "spell"
OUTAGE = 20.0
SIZE = 30_000_000  # several 8 MiB parts: the outage falls in the middle of the upload
GIVE_UP = 3  # the retry window (s) for the endpoint that stays down past it


@contextmanager
def _outage_spell(tmp_path: Path, ray_head: str, moto_s3: MotoS3,
                  **env: str) -> Iterator[tuple[Spell, str, OutageProxy]]:
    """A server on a fresh bucket behind the outage proxy; ``env``: more of its settings."""
    bucket = moto_s3.create_bucket()
    moto_port = urlsplit(moto_s3.endpoint_url).port
    assert moto_port
    # Down on the third request naming the output: after the multipart upload began.
    proxy = OutageProxy(moto_port, trigger=b"/big.bin", outage=OUTAGE, nth=3)
    env = moto_s3.env(bucket, PREFIX) | {"SPELLRAY_STORAGE_ENDPOINT_URL": proxy.endpoint_url,
                                         **env}
    home = tmp_path / "home"
    home.mkdir()
    spell = Spell(home=home, ray_address=ray_head, extra_env=env)
    try:
        started = spell("server", "start")
        assert started.returncode == 0, started.stderr
        yield spell, bucket, proxy
    finally:
        spell("server", "stop")
        proxy.close()


def _objects(moto_s3: MotoS3, bucket: str, prefix: str) -> dict[str, int]:
    listed = moto_s3.client().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{prefix}")
    return {o["Key"].removeprefix(f"{PREFIX}/{prefix}"): o["Size"]
            for o in listed.get("Contents", [])}


def _run_through_outage(spell: Spell, proxy: OutageProxy, project: Path) -> tuple[int, dict]:
    run_id = spell.submit_background(
        f"head -c {SIZE} /dev/urandom > big.bin && echo made", cwd=project)
    info = spell.wait_status(run_id, "complete", "failed", "interrupted", timeout=300)
    assert proxy.down_at is not None, "the outage never happened: the upload was not seen"
    return run_id, info


def test_run_retries_through_a_20s_storage_outage_during_its_upload(
        tmp_path: Path, ray_head: str, moto_s3: MotoS3, project: Path) -> None:
    with _outage_spell(tmp_path, ray_head, moto_s3) as (spell, bucket, proxy):
        run_id, info = _run_through_outage(spell, proxy, project)
        assert proxy.up_at is not None, f"the run ended while storage was still down: {info}"
        objects = _objects(moto_s3, bucket, f"runs/{run_id}/")
        print(f"\nS3 outage: endpoint down {proxy.up_at - proxy.down_at:.1f} s during the "
              f"upload; run {run_id} {info['status']}, ended "
              f"{_epoch(info['ended_at']) - proxy.up_at:.1f} s after the endpoint came back; "
              f"objects: {json.dumps(objects)}")
        assert info["status"] == "complete", info
        assert objects.get("big.bin") == SIZE, objects
        assert "big.bin" in _record(moto_s3, bucket, run_id)["outputs"]


def test_run_fails_saying_storage_was_unreachable_when_the_outage_outlasts_retries(
        tmp_path: Path, ray_head: str, moto_s3: MotoS3, project: Path) -> None:
    with _outage_spell(tmp_path, ray_head, moto_s3,
                       SPELLRAY_STORAGE_RETRY_SECONDS=str(GIVE_UP)) as (spell, bucket, proxy):
        run_id, info = _run_through_outage(spell, proxy, project)
        assert proxy.up_at is None, "the endpoint came back first: nothing was proven"
        objects = _objects(moto_s3, bucket, f"runs/{run_id}/")
        print(f"\nS3 outage past the {GIVE_UP} s retry window: run {run_id} {info['status']} "
              f"{_epoch(info['ended_at']) - proxy.down_at:.1f} s after the endpoint went "
              f"down ({info['status_reason'][:80]}...); objects: {json.dumps(objects)}")
        assert info["status"] == "failed", info
        assert "storage unreachable" in info["status_reason"], info
        assert "big.bin" not in objects, objects  # no half object listed as an output


def _epoch(iso: str) -> float:
    when = datetime.fromisoformat(iso)
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _record(moto_s3: MotoS3, bucket: str, run_id: int) -> dict:
    body = moto_s3.client().get_object(
        Bucket=bucket, Key=f"{PREFIX}/runs/{run_id}/.spell/run.json")["Body"]
    return json.loads(body.read())["result"]


