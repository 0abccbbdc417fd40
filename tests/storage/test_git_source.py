"""Code from a git repository: real git against a real bare repository over file://."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from spellray.errors import InvalidInput, SpellrayError
from spellray.storage.git_source import fetch_commit, resolve_remote

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=x"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@dataclass
class Remote:
    url: str
    first: str  # main's first commit, tagged v1 (annotated); not a branch tip
    feature: str  # the tip of branch "feature"
    head: str  # the tip of main, the remote's HEAD


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "train.py").write_text("print('v1')\n")
    (work / "pkg").mkdir()
    (work / "pkg" / "util.py").write_text("X = 1\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "first")
    first = _git(work, "rev-parse", "HEAD")
    _git(work, "tag", "-a", "v1", "-m", "release 1")
    _git(work, "checkout", "-qb", "feature")
    (work / "feature.txt").write_text("feature\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "feature")
    feature = _git(work, "rev-parse", "HEAD")
    _git(work, "checkout", "-q", "main")
    (work / "train.py").write_text("print('v2')\n")
    (work / "new.txt").write_text("new\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "second")
    head = _git(work, "rev-parse", "HEAD")
    bare = tmp_path / "remote.git"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return Remote(f"file://{bare}", first, feature, head)


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resolve_head_branch_tag_and_full_refs(remote: Remote) -> None:
    assert resolve_remote(remote.url, None) == remote.head
    assert resolve_remote(remote.url, "main") == remote.head
    assert resolve_remote(remote.url, "feature") == remote.feature
    assert resolve_remote(remote.url, "refs/heads/feature") == remote.feature
    # The annotated tag's own object is not a commit: the peeled commit is what a run needs.
    assert resolve_remote(remote.url, "v1") == remote.first
    assert resolve_remote(remote.url, "refs/tags/v1") == remote.first


def test_full_sha_is_accepted_as_is(remote: Remote) -> None:
    assert resolve_remote(remote.url, remote.first.upper()) == remote.first
    assert resolve_remote(remote.url, "f" * 40) == "f" * 40


def test_unknown_ref_and_short_sha_say_what_to_give(remote: Remote) -> None:
    with pytest.raises(InvalidInput, match="'no-such-branch'"):
        resolve_remote(remote.url, "no-such-branch")
    with pytest.raises(InvalidInput, match="full 40-character"):
        resolve_remote(remote.url, remote.first[:8])


def test_unreachable_repository_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not appear to be a git repository") as info:
        resolve_remote(f"file://{tmp_path}/missing.git", None)
    assert "\n" not in info.value.message


@pytest.mark.parametrize("url", [
    "--upload-pack=touch /tmp/pwned", "-oProxyCommand=x", "ext::sh -c touch% /tmp/pwned",
    "/plain/path", "ftp://host/repo.git", "",
])
def test_unsafe_or_unknown_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="not a git URL"):
        resolve_remote(url, None)
    with pytest.raises(InvalidInput, match="not a git URL"):
        fetch_commit(url, "a" * 40, Path("/nonexistent/never-created"))


def test_fetch_latest_commit(remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "code"
    lines: list[str] = []
    fetch_commit(remote.url, remote.head, dest, lines.append)
    assert _files(dest) == {"new.txt": "new\n", "pkg/util.py": "X = 1\n",
                            "train.py": "print('v2')\n"}
    assert not (dest / ".git").exists()
    assert lines[0] == f"spellray: fetching {remote.url} at {remote.head[:12]}"
    assert lines[-1].startswith(f"spellray: fetched {remote.url} at {remote.head[:12]} (")


@pytest.mark.parametrize("protocol", ["2", "0"])
def test_fetch_older_commit_into_empty_folder(remote: Remote, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              protocol: str) -> None:
    # Protocol v0 servers refuse a sha that no ref points at; the fetch must still get it.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", protocol)
    dest = tmp_path / "code"
    dest.mkdir()
    fetch_commit(remote.url, remote.first, dest)
    assert _files(dest) == {"pkg/util.py": "X = 1\n", "train.py": "print('v1')\n"}
    assert not (dest / ".git").exists()


def test_fetch_missing_commit_fails(remote: Remote, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=f"commit {'0' * 39}1 is not in") as info:
        fetch_commit(remote.url, "0" * 39 + "1", tmp_path / "code")
    assert "\n" not in info.value.message


def test_fetch_refuses_a_folder_with_files(remote: Remote, tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "keep.txt").write_text("mine")
    with pytest.raises(SpellrayError, match="not empty"):
        fetch_commit(remote.url, remote.head, tmp_path / "code")
    assert _files(tmp_path / "code") == {"keep.txt": "mine"}


def test_fetch_needs_a_full_sha(remote: Remote, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="full 40-character"):
        fetch_commit(remote.url, remote.head[:12], tmp_path / "code")
