"""The storage tree through the real CLI and server, on local storage: ls, cp, upload, rm,
link, mounts, public/ and path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import Spell

MAKE_MODEL = ("mkdir -p model && echo weights-v1 > model/weights.txt && "
              "echo cfg > model/config.txt && echo top > top.txt")


def _ok(done) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def model_run(spell: Spell, tmp_path_factory: pytest.TempPathFactory) -> int:
    """A finished run whose outputs later runs mount."""
    project = tmp_path_factory.mktemp("maker")
    (project / "README").write_text("maker\n")
    done = spell("run", MAKE_MODEL, cwd=project)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.split("run ")[1].split()[0])


def test_ls_root_and_run_outputs(spell: Spell, model_run: int) -> None:
    root = _ok(spell("ls"))
    for name in ("runs/", "uploads/", "public/"):
        assert name in root
    outputs = _ok(spell("ls", f"runs/{model_run}/model"))
    assert "weights.txt" in outputs and "config.txt" in outputs
    human = _ok(spell("ls", "-h", "public/digits"))
    assert "digits.csv" in human and "K" in human  # 259.1K, human size


def test_public_digits_is_seeded_and_read_only(spell: Spell, tmp_path: Path) -> None:
    _ok(spell("cp", "public/digits/digits.csv", str(tmp_path)))
    lines = (tmp_path / "digits.csv").read_text().splitlines()
    assert lines[0].startswith("pixel_0,") and lines[0].endswith(",target")
    assert len(lines) == 1798
    refused = spell("rm", "public/digits")
    assert refused.returncode == 1 and "only uploads" in refused.stderr
    assert (spell.storage / "public" / "digits" / "digits.csv").exists()


def test_cp_folder_refuses_to_overwrite_without_force(spell: Spell, model_run: int,
                                                      tmp_path: Path) -> None:
    _ok(spell("cp", f"runs/{model_run}/model", str(tmp_path)))
    assert (tmp_path / "model" / "weights.txt").read_text() == "weights-v1\n"
    (tmp_path / "model" / "weights.txt").write_text("mine")
    again = spell("cp", f"runs/{model_run}/model", str(tmp_path))
    assert again.returncode == 1 and "use -f" in again.stderr
    assert (tmp_path / "model" / "weights.txt").read_text() == "mine"  # nothing lost
    _ok(spell("cp", "-f", f"runs/{model_run}/model", str(tmp_path)))
    assert (tmp_path / "model" / "weights.txt").read_text() == "weights-v1\n"
    assert not list(tmp_path.rglob("*.spellray-part"))


def test_upload_rm_and_name_clash(spell: Spell, tmp_path: Path) -> None:
    data = tmp_path / "dataset"
    (data / "sub").mkdir(parents=True)
    (data / "a.bin").write_bytes(os.urandom(3_000_000))
    (data / "sub" / "b.txt").write_text("bee")
    out = _ok(spell("upload", str(data), "-n", "ds1"))
    assert "uploads/ds1" in out
    stored = spell.storage / "uploads" / "ds1"
    assert (stored / "a.bin").read_bytes() == (data / "a.bin").read_bytes()
    assert (stored / "sub" / "b.txt").read_text() == "bee"
    clash = spell("upload", str(data), "-n", "ds1")
    assert clash.returncode == 1 and "exists already" in clash.stderr
    _ok(spell("upload", "-c", str(data / "a.bin"), "-n", "compressed.bin"))
    assert (spell.storage / "uploads" / "compressed.bin").read_bytes() == \
        (data / "a.bin").read_bytes()
    _ok(spell("rm", "uploads/ds1"))
    assert not stored.exists()
    missing = spell("rm", "uploads/ds1")
    assert missing.returncode == 5 and "no 'uploads/ds1'" in missing.stderr


def test_links_resolve_everywhere(spell: Spell, model_run: int, tmp_path: Path) -> None:
    _ok(spell("link", "best", f"runs/{model_run}/model"))
    assert f"best -> runs/{model_run}/model" in _ok(spell("link"))
    assert f"best -> runs/{model_run}/model" in _ok(spell("link", "best"))
    assert "best ->" in _ok(spell("ls"))
    assert "weights.txt" in _ok(spell("ls", "best"))
    _ok(spell("cp", "best/weights.txt", str(tmp_path)))
    assert (tmp_path / "weights.txt").read_text() == "weights-v1\n"
    clash = spell("link", "best", "public/digits")
    assert clash.returncode == 1 and "already points" in clash.stderr
    for bad in ("a.b", "a/b", "a:b", "runs"):
        refused = spell("link", bad, "public/digits")
        assert refused.returncode == 1 and "link name" in refused.stderr, bad
    missing = spell("link", "nothing", "runs/99999")
    assert missing.returncode == 5
    _ok(spell("unlink", "best"))
    assert spell("ls", "best").returncode == 5


def test_mounts_feed_the_next_run(spell: Spell, model_run: int, project: Path) -> None:
    _ok(spell("link", "trained", f"runs/{model_run}"))
    command = ("cat weights/weights.txt && cat /tmp/spellray-test-mnt-$SPELLRAY_RUN_ID/top.txt"
               " && head -c 8 digits/digits.csv && echo && ls weights && echo new > weights/x"
               " && echo out > result.txt")
    done = spell("run", "-m", f"runs/{model_run}/model:weights",
                 "-m", f"trained:/tmp/spellray-test-mnt-{model_run}", "-m", "public/digits",
                 command.replace("$SPELLRAY_RUN_ID", str(model_run)), cwd=project)
    assert done.returncode == 0, done.stderr
    assert "weights-v1" in done.stdout and "top" in done.stdout and "pixel_0," in done.stdout
    run_id = int(done.stderr.split("run ")[1].split()[0])
    saved = spell.storage / "runs" / str(run_id)
    assert (saved / "result.txt").exists()
    # Mounted files are not saved again, and writing into a mount never touches storage.
    assert not (saved / "weights").exists() and not (saved / "digits").exists()
    assert not (spell.storage / "runs" / str(model_run) / "model" / "x").exists()
    assert not Path(f"/tmp/spellray-test-mnt-{model_run}").exists()  # cleaned up
    mounts = spell.result(run_id)["mounts"]
    assert [m["bytes_downloaded"] for m in mounts] == [0, 0, 0]  # local storage: no copy
    info = _ok(spell("info", str(run_id)))
    assert f"runs/{model_run}/model" in info and "weights" in info
    spell("unlink", "trained")


def test_missing_mount_fails_the_submission(spell: Spell, project: Path) -> None:
    before = spell.api("GET", "/api/runs").json()["total"]
    done = spell("run", "-m", "runs/99999/model", "true", cwd=project)
    assert done.returncode == 5 and "cannot mount runs/99999/model" in done.stderr
    bad = spell("run", "-m", "public/digits:../up", "true", cwd=project)
    assert bad.returncode == 1 and "leaves the run's working folder" in bad.stderr
    assert spell.api("GET", "/api/runs").json()["total"] == before  # no run was made


@pytest.mark.parametrize("path", ["../etc", "runs/../../x", "/etc/passwd", "runs/%2e%2e/x",
                                  "runs/%252e%252e", "runs\\..\\x"])
def test_escapes_are_refused_in_cli_and_api(spell: Spell, path: str, tmp_path: Path) -> None:
    listed = spell("ls", path)
    assert listed.returncode == 1 and "error:" in listed.stderr, listed.stderr
    copied = spell("cp", path, str(tmp_path))
    assert copied.returncode == 1
    api = spell.api("GET", "/api/resources/content", params={"path": path})
    assert api.status_code == 400 and api.json()["error"]["code"] == "unsafe_path"


def test_symlink_out_of_storage_is_refused(spell: Spell) -> None:
    (spell.storage / "uploads").mkdir(exist_ok=True)
    escape = spell.storage / "uploads" / "escape"
    escape.symlink_to("/etc")
    try:
        api = spell.api("GET", "/api/resources/content", params={"path": "uploads/escape/hostname"})
        assert api.status_code == 400 and "outside storage" in api.json()["error"]["message"]
        assert spell("ls", "uploads/escape").returncode == 1
    finally:
        escape.unlink()


def test_interrupted_upload_resumes_and_stays_hidden_until_done(spell: Spell,
                                                                tmp_path: Path) -> None:
    data = tmp_path / "half"
    data.mkdir()
    (data / "one.txt").write_text("one")
    (data / "two.txt").write_text("two")
    # An upload that died after its first file: begun, one file sent, never finished.
    assert spell.api("POST", "/api/resources/uploads/begin", params={"name": "half"}).is_success
    put = spell.api("PUT", "/api/resources/uploads/content",
                    params={"name": "half", "path": "one.txt"}, content=b"one")
    assert put.status_code == 201
    assert "half" not in _ok(spell("ls", "uploads"))  # not listed while incomplete
    _ok(spell("upload", str(data)))  # the same name resumes instead of clashing
    assert "half/" in _ok(spell("ls", "uploads"))
    assert (spell.storage / "uploads" / "half" / "two.txt").read_text() == "two"
    assert spell("upload", str(data)).returncode == 1  # finished: never overwritten


def test_local_write_errors_are_one_line(spell: Spell, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = spell("cp", "public/digits/digits.csv", str(blocker / "inside"))
    assert done.returncode == 1 and "cannot write" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert blocker.read_text() == "not a folder"
