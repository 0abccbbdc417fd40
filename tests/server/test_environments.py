"""Environment specs on the server: one digest per environment, Ray's runtime_env for it,
refusals for what the cluster cannot build, and build failures told in one line."""

from __future__ import annotations

import sys

import pytest

from spellray.errors import InvalidInput
from spellray.schemas import Environment
from spellray.server.job_status import map_job_status
from spellray.server.ray_jobs import environment_failure_reason
from spellray.server.services import environments
from spellray.server.services.environments import ClusterAbilities

NOTHING = ClusterAbilities(conda=False, container_runtime=False)
EVERYTHING = ClusterAbilities(conda=True, container_runtime=True)


def test_digest_ignores_order_duplicates_and_where_packages_came_from() -> None:
    a = Environment(pip=["six==1.15.0", "attrs"], apt=["sl", "jq"])
    b = Environment(pip=["attrs"], pip_requirements=["six==1.15.0", "attrs"],
                    apt=["jq", "sl", "jq"])
    assert environments.digest(a) == environments.digest(b)
    assert len(environments.digest(a) or "") == 64
    assert environments.digest(Environment(pip=["attrs"])) != environments.digest(a)
    assert environments.digest(Environment()) is None


def test_framework_is_a_pip_preset() -> None:
    assert environments.framework_packages("pytorch") == ["torch"]
    assert environments.framework_packages("TensorFlow==2.16.1") == ["tensorflow==2.16.1"]
    assert environments.digest(Environment(framework="sklearn")) == \
        environments.digest(Environment(pip=["scikit-learn"]))
    with pytest.raises(InvalidInput, match="is not one spellray knows"):
        environments.framework_packages("cobol")


@pytest.mark.parametrize("requirement", ["-e .", "--index-url=http://x", "-r other.txt", ""])
def test_pip_options_are_not_requirements(requirement: str) -> None:
    with pytest.raises(InvalidInput, match="not a pip requirement"):
        environments.normalize(Environment(pip=[requirement]))


def test_runtime_env_uses_spellrays_plugin_for_python_packages() -> None:
    fields = environments.runtime_env(Environment(pip=["six==1.15.0"], apt=["sl"]), NOTHING)
    assert fields == {"spellray_venv": {"packages": ["six==1.15.0"]}}
    assert environments.runtime_env(Environment(apt=["sl"]), NOTHING) == {}
    marker = environments.setup_marker(fields)
    assert marker is not None and len(marker) == 40
    # The env's `python`, once the shell sees the plugin's mark; else the server's.
    assert environments.python_command(fields).endswith("; exec python")
    assert f'[ "$SPELLRAY_VENV" = {marker} ] ||' in environments.python_command(fields)
    assert environments.python_command({}) == f"exec {sys.executable}"
    # Ray's set-up log is searched by the plugin's folder name, which is this marker.
    from ray.runtime_env import RuntimeEnv

    from spellray.cluster.venv_plugin import VenvPlugin

    assert VenvPlugin.get_uris(object.__new__(VenvPlugin), RuntimeEnv(**fields)) == \
        [f"spellray_venv://{marker}"]


def test_what_the_cluster_cannot_build_is_refused() -> None:
    conda = Environment(conda={"dependencies": ["python=3.11"]})
    with pytest.raises(InvalidInput, match="needs conda on the cluster's nodes"):
        environments.runtime_env(conda, NOTHING)
    assert environments.runtime_env(conda, EVERYTHING) == {"conda": conda.conda}
    image = Environment(docker_image="python:3.11-slim")
    with pytest.raises(InvalidInput, match="needs a container runtime"):
        environments.runtime_env(image, NOTHING)
    assert environments.runtime_env(image, EVERYTHING) == {"image_uri": "python:3.11-slim"}
    with pytest.raises(InvalidInput, match="takes its Python packages from the image"):
        environments.runtime_env(Environment(docker_image="python:3.11", pip=["six"]),
                                 EVERYTHING)
    with pytest.raises(InvalidInput, match="not an image reference"):
        environments.normalize(Environment(docker_image="Bad Image!"))


PIP_FAILURE = """runtime_env setup failed: Failed to set up runtime environment.
Could not create the actor because its associated runtime env failed to be created.
Traceback (most recent call last):
  File "x.py", line 1, in <module>
Last 50 lines of stdout:
    ERROR: Could not find a version that satisfies the requirement nope==1.0 (from versions: none)
    ERROR: No matching distribution found for nope==1.0
"""
UV_FAILURE = """runtime_env setup failed: Failed to set up runtime environment.
Last 50 lines of stdout:
    error: No solution found when resolving dependencies
      cause: Because nope was not found in the package registry and you require nope==1.0,
"""


def test_build_failures_are_told_in_pips_and_uvs_own_words() -> None:
    assert environment_failure_reason(PIP_FAILURE) == \
        "build failed: No matching distribution found for nope==1.0"
    assert environment_failure_reason(UV_FAILURE).startswith(
        "build failed: Because nope was not found in the package registry")
    assert environment_failure_reason("something else\nmore") == \
        "build failed: something else"


def test_a_pending_job_building_its_environment_is_building() -> None:
    waiting = "Job has not started yet. It may be waiting for the runtime environment to be set up."
    assert map_job_status("PENDING", None, waiting).value == "building"
    assert map_job_status("PENDING", None, "Job has not started yet.").value == "requested"


def test_a_cluster_without_the_plugin_ends_the_job_saying_what_to_set() -> None:
    """Ray only warns about a runtime_env field no plugin claims: the entrypoint itself
    refuses to go on without the environment (and goes on with it)."""
    import os
    import subprocess

    fields = environments.runtime_env(Environment(pip=["six"]), NOTHING)
    command = environments.python_command(fields) + " -c 'print(\"in\")'"
    env = {k: v for k, v in os.environ.items() if k != "SPELLRAY_VENV"}
    without = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True,
                             check=False)
    assert without.returncode == 97 and without.stdout == ""
    assert "do not load spellray's environment plugin" in without.stderr
    assert "RAY_RUNTIME_ENV_PLUGINS=" in without.stderr
    marked = {**env, "SPELLRAY_VENV": environments.setup_marker(fields) or ""}
    with_it = subprocess.run(["sh", "-c", command], env=marked, capture_output=True,
                             text=True, check=False)
    assert with_it.returncode == 0 and with_it.stdout == "in\n", with_it.stderr
