"""Ray's token for the heads spellray starts: made once, private, and handed to Ray so that
an inherited token of the user's own does not win (the head itself: tests/e2e/
test_local_cluster.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spellray.cluster import local
from spellray.cluster.ray_auth import ensure_token, read_token, token_env, token_file


def test_the_token_is_made_once_and_private(tmp_path: Path) -> None:
    path = ensure_token(token_file(tmp_path / "home"))
    assert path == tmp_path / "home" / "ray_auth_token"
    assert path.stat().st_mode & 0o777 == 0o600
    first = read_token(path)
    assert len(first) == 64 and int(first, 16) >= 0  # 256 random bits, hex
    assert read_token(ensure_token(path)) == first  # a restarted head keeps its token
    path.write_text("")
    assert read_token(ensure_token(path)) not in ("", first)  # an emptied file is remade


def test_a_head_gets_the_token_by_path_and_not_an_inherited_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "a-users-token-for-another-cluster")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    path = ensure_token(token_file(tmp_path))
    log = tmp_path / "env.log"
    child = local._spawn([sys.executable, "-c", "import os; print(sorted((k, v) for k, v in "
                          "os.environ.items() if k.startswith('RAY_AUTH')))"],
                         log, token_env(path))
    assert child.wait(timeout=60) == 0
    assert log.read_text().strip() == str(
        [("RAY_AUTH_MODE", "token"), ("RAY_AUTH_TOKEN_PATH", str(path))])
