"""`spell model create | list | describe | download | rm` against the real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import Spell


def _upload(spell: Spell, tmp_path: Path, name: str, text: str) -> None:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "weights.txt").write_text(text)
    done = spell("upload", str(folder), "-n", name)
    assert done.returncode == 0, done.stderr


@pytest.mark.both_databases
def test_versions_list_describe_download_rm(spell: Spell, tmp_path: Path) -> None:
    _upload(spell, tmp_path, "m-one", "1")
    _upload(spell, tmp_path, "m-two", "2")
    first = spell("model", "create", "clf", "uploads/m-one")
    assert first.returncode == 0, first.stderr
    assert "clf:v1 -> uploads/m-one" in first.stdout
    second = spell("model", "create", "clf", "uploads/m-two")
    assert "clf:v2 -> uploads/m-two" in second.stdout
    # An explicit version, given as a number, is normalized to vN.
    third = spell("model", "create", "clf:7", "uploads/m-one")
    assert "clf:v7" in third.stdout, third.stderr
    assert "clf:v8" in spell("model", "create", "clf", "uploads/m-one").stdout

    listing = spell("model", "list").stdout
    assert [line.split()[1] for line in listing.splitlines() if line.split()[0] == "clf"] == \
        ["v1", "v2", "v7", "v8"]
    assert "uploads/m-two" in spell("model", "describe", "clf:v2").stdout
    assert spell("model", "describe", "clf").stdout.count("clf:") == 4
    models = spell.api("GET", "/api/models/clf").json()
    assert [m["version"] for m in models] == ["v1", "v2", "v7", "v8"]

    # download: the newest version by default, a given one on request
    dest = tmp_path / "down"
    done = spell("model", "download", "clf:v2", "-d", str(dest))
    assert done.returncode == 0, done.stderr
    assert (dest / "m-two" / "weights.txt").read_text() == "2"

    removed = spell("model", "rm", "clf:v7")
    assert removed.returncode == 0 and "removed model clf:v7" in removed.stdout
    assert spell("model", "describe", "clf:v7").returncode == 5


@pytest.mark.both_databases
def test_bad_input_is_one_line(spell: Spell, tmp_path: Path) -> None:
    _upload(spell, tmp_path, "m-dup", "x")
    assert spell("model", "create", "dup:v1", "uploads/m-dup").returncode == 0
    cases = [
        (("model", "create", "nope", "uploads/does-not-exist"), 5, "no uploads/does-not-exist"),
        (("model", "create", "dup:v1", "uploads/m-dup"), 1, "exists already"),
        (("model", "create", "dup:vx", "uploads/m-dup"), 1, "not a model version"),
        (("model", "create", "bad name", "uploads/m-dup"), 1, "not a model name"),
        (("model", "describe", "ghost"), 5, "there is no model ghost"),
        (("model", "rm", "dup"), 1, "name the version"),
        (("model", "download", "ghost:v1"), 5, "there is no model"),
    ]
    for args, code, words in cases:
        done = spell(*args)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert json.loads(spell.api("GET", "/api/models/dup").text)[0]["version"] == "v1"
