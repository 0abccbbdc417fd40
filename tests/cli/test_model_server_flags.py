"""Spell's model-server flags through the real CLI: --validate (no spellray server needed),
--config, --from-file, --node-group/--serving-group, and `spell model create --file` against
a Ray-less spellray server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import SPELL, RaylessServer

GOOD = '''
from spell.serving import BasePredictor


class Predictor(BasePredictor):
    def __init__(self, threshold=0.5):
        self.threshold = threshold

    def predict(self, payload):
        return payload
'''


def run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SPELL, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def one_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), \
        (done.returncode, done.stderr)
    return lines[0]


def test_validate_good_and_bad_predictors_without_a_server(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "broken.py").write_text("import no_such_module_for_spellray\n")
    (tmp_path / "nopredict.py").write_text("from spell.serving import BasePredictor\n\n"
                                           "class P(BasePredictor):\n    pass\n")
    (tmp_path / "config.json").write_text(json.dumps({"threshold": 0.9}))
    (tmp_path / "wrong.yaml").write_text("limit: 3\n")
    (tmp_path / "opts.yaml").write_text("classname: Predictor\nconfig: config.json\n")
    (tmp_path / "wrong-opts.yaml").write_text("replicas: 2\n")
    home = tmp_path / "home"
    # a home with nothing running, and a Ray address where nothing listens
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    env.update(SPELLRAY_HOME=str(home), SPELLRAY_RAY_ADDRESS="http://127.0.0.1:9")

    ok = run(env, "server", "serve", "m:v1", "good.py", "--validate", "--config",
             "config.json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "good.py: Predictor is a valid predictor (nothing deployed)" in ok.stdout
    from_file = run(env, "server", "serve", "m:v1", "good.py", "--validate", "--from-file",
                    "opts.yaml", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    assert "No module named 'no_such_module_for_spellray'" in one_error(
        run(env, "server", "serve", "m:v1", "broken.py", "--validate", cwd=tmp_path))
    assert "P has no predict" in one_error(
        run(env, "server", "serve", "m:v1", "nopredict.py", "--validate", cwd=tmp_path))
    assert "does not fit the --config keys (limit)" in one_error(
        run(env, "server", "serve", "m:v1", "good.py", "--validate", "--config", "wrong.yaml",
            cwd=tmp_path))
    assert "--config missing.yaml: no such file" in one_error(
        run(env, "server", "serve", "m:v1", "good.py", "--validate", "--config",
            "missing.yaml", cwd=tmp_path))
    assert "unknown option 'replicas'" in one_error(
        run(env, "server", "update", "x", "--validate", "--from-file", "wrong-opts.yaml",
            cwd=tmp_path))
    # nothing was started for any of it: no spellray server, no state
    assert not home.exists() or not any(home.iterdir())


@pytest.fixture(scope="module")
def spell(rayless_server: RaylessServer):
    def call(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run(rayless_server.env, *args, cwd=cwd)
    return call


def test_model_create_file_and_node_group_checks(spell, tmp_path: Path) -> None:
    trained = tmp_path / "trained"
    (trained / "out").mkdir(parents=True)
    (trained / "out" / "model.h5").write_text("weights")
    (trained / "log.txt").write_text("log")
    assert spell("upload", str(trained), "-n", "trained-files", cwd=tmp_path).returncode == 0
    made = spell("model", "create", "cifar", "uploads/trained-files", "--file",
                 "out/model.h5:model.h5", "-f", "log.txt", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "out/model.h5 -> model.h5" in made.stdout and "log.txt -> log.txt" in made.stdout
    described = spell("model", "describe", "cifar:v1", cwd=tmp_path).stdout
    assert "files out/model.h5:model.h5, log.txt:log.txt" in described
    # download: the model's files only, at their mount paths (as /model shows them)
    down = spell("model", "download", "cifar:v1", "-d", str(tmp_path / "down"), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    got = sorted(str(f.relative_to(tmp_path / "down")) for f in (tmp_path / "down").rglob("*"))
    assert got == ["log.txt", "model.h5"]
    assert (tmp_path / "down" / "model.h5").read_text() == "weights"

    cases = [
        (("model", "create", "c2", "uploads/trained-files", "--file", "nope.h5"),
         "--file nope.h5: there is no such file in uploads/trained-files"),
        (("model", "create", "c2", "uploads/trained-files", "--file", "../x"),
         "give a path inside the resource"),
        (("model", "create", "c2", "uploads/trained-files", "--file", "log.txt:m",
          "--file", "out/model.h5:m"), "the same MOUNT_PATH"),
        (("server", "serve", "cifar:v1", "p.py", "--node-group", "a", "--serving-group", "b"),
         "--node-group and --serving-group name the same thing"),
        (("server", "serve", "cifar:v1", "p.py", "-t", "GPU", "--node-group", "CPU"),
         "disagree"),
    ]
    for args, words in cases:
        assert words in one_error(spell(*args, cwd=tmp_path)), args
    assert "c2" not in spell("model", "list", cwd=tmp_path).stdout
