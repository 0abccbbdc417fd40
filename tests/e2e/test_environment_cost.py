"""A --pip environment costs what it adds (issue 16): on the node, a folder holding only the
environment's packages, which win over the node's, with the node's own (spellray, Ray)
still importable; reused by the next run; and the same in a search's trials and in a
distributed run's ranks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_hyper import search_id_of, wait_search
from tests.helpers import Spell

# A version neither the node (six 1.17) nor the other environment tests use.
SIX = "1.14.0"
# Prints what the test asserts on as one JSON line: where Python's prefix is, how much disk
# it holds (each file once), which six, and where spellray and Ray come from.
REPORT = r"""
import json, os, sys, six, spellray, ray
seen, size = set(), 0
for root, _, files in os.walk(sys.prefix):
    for name in files:
        st = os.lstat(os.path.join(root, name))
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino)); size += st.st_size
print("REPORT " + json.dumps({"prefix": sys.prefix, "bytes": size, "six": six.__version__,
      "six_file": six.__file__, "spellray": spellray.__file__, "ray": ray.__file__}))
"""


def reports(text: str) -> list[dict]:
    return [json.loads(m[1]) for m in re.finditer(r"REPORT (\{.*\})", text)]


def site_packages_bytes() -> int:
    """The node's own site-packages (this test's Python is the node's)."""
    folders = [p for p in sys.path if p.endswith("-packages") and Path(p).is_dir()]
    done = subprocess.run(["du", "-scb", *folders], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.splitlines()[-1].split()[0])


def test_environment_holds_only_its_packages_which_win(spell: Spell, tmp_path: Path) -> None:
    (tmp_path / "report.py").write_text(REPORT)
    first = spell("run", "--pip", f"six=={SIX}", "python report.py", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = spell("run", "--pip", f"six=={SIX}", "python report.py", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    [a], [b] = reports(first.stdout), reports(second.stdout)
    # The environment's six, not the node's; spellray and Ray from the node.
    assert a["six"] == SIX and a["six_file"].startswith(a["prefix"])
    assert "runtime_resources/spellray_venv/" in a["prefix"]
    assert not a["spellray"].startswith(a["prefix"]) and not a["ray"].startswith(a["prefix"])
    # The second run uses the first one's environment, unchanged.
    assert b["prefix"] == a["prefix"] and b["bytes"] == a["bytes"]
    # Kilobytes for six, where a copy of the node's Python would be gigabytes.
    assert a["bytes"] < 50 * 2**20
    assert a["bytes"] * 100 < site_packages_bytes()


def test_search_trials_run_in_the_environment(spell: Spell, tmp_path: Path) -> None:
    (tmp_path / "report.py").write_text(REPORT)
    done = spell("hyper", "grid", "--param", "n=1,2", "--pip", f"six=={SIX}",
                 "python report.py --n :n:", cwd=tmp_path)
    ended = wait_search(spell, search_id_of(done), "complete")
    assert len(ended["runs"]) == 2 and all(r["status"] == "complete" for r in ended["runs"])
    for run in ended["runs"]:
        [report] = reports(spell("logs", str(run["id"])).stdout)
        assert report["six"] == SIX and "runtime_resources/spellray_venv/" in report["prefix"]


def test_distributed_ranks_run_in_the_environment(spell: Spell, tmp_path: Path) -> None:
    (tmp_path / "report.py").write_text(REPORT)
    run_id = spell.submit_background("python report.py", "--distributed", "2", "--pip",
                                     f"six=={SIX}", cwd=tmp_path)
    info = spell.wait_status(run_id, "complete", "failed", timeout=300)
    log = spell("logs", str(run_id)).stdout
    assert info["status"] == "complete", (info["status_reason"], log)
    found = reports(log)
    assert len(found) == 2, log
    assert all(r["six"] == SIX and "runtime_resources/spellray_venv/" in r["prefix"]
               for r in found)
