"""spellray on S3 storage (a moto server over HTTP): runs save outputs into the bucket, later
runs mount them through the node cache, and ls / cp / upload / rm / link work the same."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Spell
from tests.s3 import MotoS3

PREFIX = "spell"


@pytest.fixture(scope="module")
def s3_spell(tmp_path_factory: pytest.TempPathFactory, ray_head: str,
             moto_s3: MotoS3) -> Iterator[tuple[Spell, str]]:
    bucket = moto_s3.create_bucket()
    home = tmp_path_factory.mktemp("s3-spell") / "home"
    home.mkdir()
    installation = Spell(home=home, ray_address=ray_head, extra_env=moto_s3.env(bucket, PREFIX))
    started = installation("server", "start")
    assert started.returncode == 0, started.stderr
    yield installation, bucket
    installation("server", "stop")


def _keys(moto_s3: MotoS3, bucket: str, prefix: str) -> dict[str, int]:
    listed = moto_s3.client().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{prefix}")
    return {o["Key"].removeprefix(f"{PREFIX}/"): o["Size"] for o in listed.get("Contents", [])}


def test_outputs_land_in_the_bucket_and_a_second_mount_downloads_nothing(
        s3_spell: tuple[Spell, str], moto_s3: MotoS3, project: Path) -> None:
    spell, bucket = s3_spell
    assert not (spell.home / "storage").exists()  # nothing local: storage is the bucket
    assert "public/digits/digits.csv" in _keys(moto_s3, bucket, "public/")  # seeded there
    made = spell("run", "mkdir -p model && head -c 2000000 /dev/urandom > model/w.bin && "
                 "echo cfg > model/c.txt", cwd=project)
    assert made.returncode == 0, made.stderr
    maker = int(made.stderr.split("run ")[1].split()[0])
    outputs = _keys(moto_s3, bucket, f"runs/{maker}/")
    assert outputs[f"runs/{maker}/model/w.bin"] == 2_000_000
    assert f"runs/{maker}/.spell/log" in outputs

    model_prefix = f"{PREFIX}/runs/{maker}/model/"
    ids, gets = [], []
    for _ in range(2):
        used = spell("run", "-m", f"runs/{maker}/model:m", "wc -c m/w.bin && cat m/c.txt",
                     cwd=project)
        assert used.returncode == 0, used.stderr
        assert "2000000 m/w.bin" in used.stdout and "cfg" in used.stdout
        ids.append(int(used.stderr.split("run ")[1].split()[0]))
        gets.append(len(moto_s3.object_gets(bucket, model_prefix)))
    first, second = (_result(moto_s3, bucket, i) for i in ids)
    assert first["mounts"][0]["bytes_downloaded"] == 2_000_004
    assert second["mounts"][0]["bytes_downloaded"] == 0
    # The moto server saw the bodies fetched for the first mount and none for the second.
    assert gets[0] >= 2 and gets[1] == gets[0], gets
    # and the mounted files were not saved again as outputs of the runs that mounted them
    assert not [k for k in _keys(moto_s3, bucket, f"runs/{ids[1]}/") if "/m/" in k]


def _result(moto_s3: MotoS3, bucket: str, run_id: int) -> dict:
    import json

    body = moto_s3.client().get_object(Bucket=bucket,
                                       Key=f"{PREFIX}/runs/{run_id}/.spell/run.json")["Body"]
    return json.loads(body.read())["result"]


def test_cli_on_s3(s3_spell: tuple[Spell, str], moto_s3: MotoS3, tmp_path: Path) -> None:
    spell, bucket = s3_spell
    data = tmp_path / "ds"
    (data / "nested").mkdir(parents=True)
    (data / "big.bin").write_bytes(os.urandom(6_000_000))
    (data / "nested" / "small.txt").write_text("small")
    up = spell("upload", str(data), "-n", "ds")
    assert up.returncode == 0, up.stderr
    assert _keys(moto_s3, bucket, "uploads/ds/") == {"uploads/ds/big.bin": 6_000_000,
                                                     "uploads/ds/nested/small.txt": 5}
    listed = spell("ls", "uploads/ds")
    assert "big.bin" in listed.stdout and "nested/" in listed.stdout
    assert spell("link", "mydata", "uploads/ds").returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    copied = spell("cp", "mydata", str(out))
    assert copied.returncode == 0, copied.stderr
    assert (out / "ds" / "big.bin").read_bytes() == (data / "big.bin").read_bytes()
    assert (out / "ds" / "nested" / "small.txt").read_text() == "small"
    assert spell("rm", "uploads/ds").returncode == 0
    assert _keys(moto_s3, bucket, "uploads/ds/") == {}
    assert spell("ls", "mydata").returncode == 5  # the link now names nothing
    escape = spell("ls", "uploads/../../other-bucket")
    assert escape.returncode == 1 and "leaves the storage root" in escape.stderr
