"""spellray's runtime_env plugin on its own, in this process (no Ray head): a real uv build of
a real package, what the environment holds and sees, the context Ray gets from it, and its
deletion by Ray's own URI cache. The plugin's life inside Ray's agent is tests/e2e's."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from pathlib import Path

import pytest
from ray._private.runtime_env.context import RuntimeEnvContext
from ray._private.runtime_env.uri_cache import URICache
from ray.runtime_env import RuntimeEnv

from spellray.cluster import venv_field
from spellray.cluster.venv_plugin import VenvPlugin

LOG = logging.getLogger("test_venv_plugin")
SHOW = ("import json, six, spellray, ray; print(json.dumps({'six': six.__version__, "
        "'six_file': six.__file__, 'spellray': spellray.__file__, 'ray': ray.__file__}))")


def build(plugin: VenvPlugin, packages: list[str]) -> tuple[str, int, RuntimeEnvContext]:
    runtime_env = RuntimeEnv(**{venv_field.FIELD: venv_field.field(packages)})
    [uri] = plugin.get_uris(runtime_env)
    size = asyncio.run(plugin.create(uri, runtime_env, RuntimeEnvContext(), LOG))
    context = RuntimeEnvContext()
    plugin.modify_context([uri], runtime_env, context, LOG)
    return uri, size, context


def test_an_environment_holds_its_packages_and_sees_the_nodes(tmp_path: Path) -> None:
    plugin = VenvPlugin(str(tmp_path))
    uri, size, context = build(plugin, ["six==1.13.0"])
    folder = tmp_path / venv_field.FIELD / uri.split("://")[1]
    assert context.py_executable == str(folder / "bin" / "python")
    assert context.env_vars[venv_field.MARK_VAR] == folder.name
    assert context.command_prefix[:2] == ["source", str(folder / "bin" / "activate")]
    # Kilobytes: six and a bare virtualenv, no copy of the node's Python or packages.
    assert 0 < size < 5 * 2**20
    shown = json.loads(subprocess.run([context.py_executable, "-c", SHOW], check=True,
                                      capture_output=True, text=True).stdout)
    assert shown["six"] == "1.13.0" and shown["six_file"].startswith(str(folder))
    assert not shown["spellray"].startswith(str(folder))
    assert not shown["ray"].startswith(str(folder))
    # Built once: a second create (another job, same list) reuses the folder as it is.
    marker = folder / "spellray-test-mark"
    marker.touch()
    assert build(plugin, ["six==1.13.0"])[0] == uri and marker.exists()


def test_rays_uri_cache_deletes_what_no_job_uses(tmp_path: Path) -> None:
    plugin = VenvPlugin(str(tmp_path))
    # A cache that holds one environment: adding a second evicts the unused first.
    cache = URICache(plugin.delete_uri, max_total_size_bytes=1)
    first, size, _ = build(plugin, ["six==1.13.0"])
    cache.add(first, size, LOG)
    cache.mark_unused(first, LOG)
    second, size, _ = build(plugin, ["six==1.12.0"])
    cache.add(second, size, LOG)
    folders = {p.name for p in (tmp_path / venv_field.FIELD).iterdir()}
    assert folders == {second.split("://")[1]}


def test_a_failed_build_leaves_nothing_and_says_uvs_words(tmp_path: Path) -> None:
    plugin = VenvPlugin(str(tmp_path))
    with pytest.raises(Exception, match="spellray-no-such-package-xyz") as failed:
        build(plugin, ["spellray-no-such-package-xyz==1.0"])
    assert "No solution found" in str(failed.value)
    assert list((tmp_path / venv_field.FIELD).iterdir()) == []
