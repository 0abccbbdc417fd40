"""The rank exit hook (runner/rank_site) in real Python processes: two real gloo ranks
destroy their process group at exit, and a sitecustomize it shadows still runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from spellray.runner.rank_site import RANK_SITE_DIR, pythonpath_with_rank_site
from tests.helpers import free_port

# The script never calls destroy_process_group itself; it only watches for the hook's call.
WATCHED = """\
import torch
import torch.distributed as dist

original = dist.destroy_process_group
def watched(*args, **kwargs):
    print(f"rank {rank}: destroy_process_group at exit", flush=True)
    return original(*args, **kwargs)
dist.destroy_process_group = watched

dist.init_process_group("gloo")
rank = dist.get_rank()
total = torch.tensor([1.0])
dist.all_reduce(total)
print(f"rank {rank} sum {total.item()}", flush=True)
"""


def test_pythonpath_puts_the_rank_site_first() -> None:
    assert pythonpath_with_rank_site("") == str(RANK_SITE_DIR)
    joined = pythonpath_with_rank_site(f"/a{os.pathsep}{os.pathsep}/b")
    assert joined.split(os.pathsep) == [str(RANK_SITE_DIR), "/a", "/b"]


def test_two_gloo_ranks_destroy_their_group_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "watched.py"
    script.write_text(WATCHED)
    port = free_port()
    ranks = []
    for rank in range(2):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "RANK": str(rank), "WORLD_SIZE": "2",
               "PYTHONPATH": pythonpath_with_rank_site(os.environ.get("PYTHONPATH", ""))}
        ranks.append(subprocess.Popen([sys.executable, str(script)], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for rank, process in enumerate(ranks):
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, out
        assert f"rank {rank} sum 2.0" in out
        assert f"rank {rank}: destroy_process_group at exit" in out


def test_a_shadowed_sitecustomize_still_runs(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import builtins\nbuiltins.THEIRS = 'ran'\n")
    env = {**os.environ, "PYTHONPATH": pythonpath_with_rank_site(str(theirs))}
    done = subprocess.run(
        [sys.executable, "-c", "import atexit, sitecustomize; print(THEIRS)"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran"
