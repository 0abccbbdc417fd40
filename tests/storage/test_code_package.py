from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from spellray.errors import InvalidInput
from spellray.storage.code_package import changed_files, package_folder, unpack

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


def _repo(folder: Path) -> None:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "a.py").write_text("print('a')\n")
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(folder / "run.sh", 0o755)
    (folder / ".gitignore").write_text("data/\n*.ckpt\n")
    (folder / "data").mkdir()
    (folder / "data" / "big.bin").write_bytes(b"0" * 100)
    (folder / "model.ckpt").write_bytes(b"1")
    subprocess.run([*GIT, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*GIT, "commit", "-qm", "init"], cwd=folder, check=True)


def test_git_folder_packages_what_git_tracks(tmp_path: Path) -> None:
    _repo(tmp_path)
    (tmp_path / "new_untracked.py").write_text("x = 1\n")
    package = package_folder(tmp_path, limit_mb=10)
    dest = tmp_path.parent / "unpacked"
    manifest = unpack(package.data, dest)
    assert sorted(manifest) == [".gitignore", "new_untracked.py", "run.sh", "src/a.py"]
    assert os.access(dest / "run.sh", os.X_OK)
    assert package.git_commit and len(package.git_commit) == 40
    assert package.git_dirty is False  # untracked files do not make it dirty
    (tmp_path / "src" / "a.py").write_text("print('b')\n")
    assert package_folder(tmp_path, limit_mb=10).git_dirty is True


def test_same_files_give_the_same_digest(tmp_path: Path) -> None:
    _repo(tmp_path)
    first = package_folder(tmp_path, limit_mb=10)
    os.utime(tmp_path / "src" / "a.py", (1, 1))  # a touched file is the same code
    assert package_folder(tmp_path, limit_mb=10).sha256 == first.sha256
    (tmp_path / "src" / "a.py").write_text("print('changed')\n")
    assert package_folder(tmp_path, limit_mb=10).sha256 != first.sha256


def test_folder_over_the_limit_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "huge.bin").write_bytes(b"0" * (2 * 1024 * 1024))
    with pytest.raises(InvalidInput, match="over the 1 MB limit"):
        package_folder(tmp_path, limit_mb=1)


def test_changed_files_are_the_outputs(tmp_path: Path) -> None:
    _repo(tmp_path)
    dest = tmp_path.parent / "work"
    manifest = unpack(package_folder(tmp_path, limit_mb=10).data, dest)
    (dest / "src" / "a.py").write_text("print('edited')\n")
    (dest / "out").mkdir()
    (dest / "out" / "m.txt").write_text("new")
    (dest / "mnt").mkdir()
    (dest / "mnt" / "mounted.txt").write_text("skip me")
    assert changed_files(dest, manifest, skip={"mnt"}) == ["out/m.txt", "src/a.py"]
