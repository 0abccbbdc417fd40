"""`spell workflow create` refuses malformed --repo / --github-repo in one line, before it
starts anything: no local server, no Ray head, no home folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import SPELL


def test_bad_repos_start_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    env.update(SPELLRAY_HOME=str(home), SPELLRAY_RAY_ADDRESS="http://127.0.0.1:9")
    (tmp_path / "plain").mkdir()
    for flags, message in (
            (["--repo", "nonsense"], "--repo 'nonsense' is malformed"),
            (["--repo", f"code={tmp_path / 'plain'}"], "is not a git repository"),
            (["--repo", f"code={tmp_path / 'missing'}"], "is not a folder"),
            (["--github-repo", "code"], "--github-repo 'code' is malformed")):
        done = subprocess.run([*SPELL, "workflow", "create", *flags, "python manager.py"],
                              env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 1, (flags, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (flags, done.stderr)
    assert not home.exists()
