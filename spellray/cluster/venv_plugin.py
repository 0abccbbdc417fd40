"""spellray's runtime_env plugin for Python packages: a run's environment costs what it adds.

Ray's own ``uv`` field makes each environment a virtualenv that sees the node's packages; when
the node's Python is itself a virtualenv (the usual install), Ray gets there by cloning that
whole virtualenv (about 1.9 GB with Ray and torch) for every distinct package list. This
plugin builds instead, on the node that runs the job, a bare virtualenv with uv (which
hard-links the packages from its cache) holding only the environment's packages, and a
``.pth`` file that appends the node's own site-packages after them: the environment's
packages win, and spellray, Ray and whatever else the node has stay importable. It is the
same launch path as Ray's ``uv``: a runtime_env field, cached per URI (one per package list)
and refcounted and evicted by Ray's URI cache, built under Ray's set-up log, and applied
with Ray's ``py_executable`` (the job's workers and its entrypoint's ``python`` are the
environment's). Ray loads it from ``RAY_RUNTIME_ENV_PLUGINS`` (venv_field.ray_env_vars) in
every node's runtime_env agent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import site
import sys
from pathlib import Path

from ray._private.runtime_env.context import RuntimeEnvContext
from ray._private.runtime_env.plugin import RuntimeEnvPlugin
from ray._private.runtime_env.utils import check_output_cmd
from ray.runtime_env import RuntimeEnv

from spellray.cluster.venv_field import FIELD, MARK_VAR, env_hash

# Written last: a folder without it is a build that did not finish.
_DONE = ".spellray-built"
_NODE_PTH = "_spellray_node_packages.pth"


def node_site_dirs() -> list[str]:
    """The node's own package folders, in its own order (a virtualenv's, a conda env's or the
    system Python's, and the user's if Python reads it)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


def _site_packages(env_dir: Path) -> Path:
    return env_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / \
        "site-packages"


def _uv() -> str:
    try:
        from uv import find_uv_bin  # spellray depends on uv: the one on this node

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise RuntimeError("uv is not installed on this node: pip install uv") from None
        return found


def _resources_dir() -> str:
    """Ray gives built-in plugins its runtime_resources folder, and third-party ones
    nothing: read it from the agent's own command line (per Ray session, so a new session
    starts clean, as Ray's own environments do)."""
    argv = sys.argv
    for i, arg in enumerate(argv):
        if arg == "--runtime-env-dir" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--runtime-env-dir="):
            return arg.split("=", 1)[1]
    import tempfile

    return os.path.join(tempfile.gettempdir(), "spellray-runtime-resources")


class VenvPlugin(RuntimeEnvPlugin):

    name = FIELD

    def __init__(self, resources_dir: str | None = None) -> None:
        self._dir = Path(resources_dir or _resources_dir()) / FIELD
        self._dir.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, asyncio.Lock] = {}

    def get_uris(self, runtime_env: RuntimeEnv) -> list[str]:
        value = runtime_env.get(FIELD)
        return [f"{FIELD}://{env_hash(value)}"] if value else []

    def _path(self, uri: str) -> Path:
        return self._dir / uri.split("://", 1)[1]

    async def create(self, uri: str | None, runtime_env: RuntimeEnv,
                     context: RuntimeEnvContext, logger: logging.Logger) -> int:
        value = runtime_env.get(FIELD)
        if not value or uri is None:
            return 0
        lock = self._locks.setdefault(uri, asyncio.Lock())
        async with lock:  # two jobs wanting one new environment build it once
            target = self._path(uri)
            if not (target / _DONE).exists():
                await self._build(target, list(value["packages"]), logger)
            return _size(target)

    async def _build(self, target: Path, packages: list[str], logger: logging.Logger) -> None:
        # In place, not built aside and renamed: a virtualenv's scripts name its folder.
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        uv = _uv()
        # Ray's set-up log names the folder, which is how the server finds these lines.
        logger.info("Building environment %s with uv: %s", target, " ".join(packages))
        requirements = target / "requirements.txt"
        requirements.write_text("\n".join(packages) + "\n")
        env = {**os.environ, "VIRTUAL_ENV": ""}
        try:
            # The node's own interpreter (uv makes the venv from its base Python), no seed
            # packages: pip and setuptools come from the node's site-packages if asked for.
            await check_output_cmd([uv, "venv", "--quiet", "--allow-existing", "--python",
                                    sys.executable, str(target)],
                                   logger=logger, cwd=target, env=env)
            # From uv's cache: hard links where it shares a file system with Ray's folder.
            await check_output_cmd([uv, "pip", "install", "--python",
                                    str(target / "bin" / "python"), "-r", str(requirements)],
                                   logger=logger, cwd=target, env=env)
            # After the env's own site-packages, the node's: addsitedir also reads their
            # .pth files (editable installs such as spellray's own).
            (_site_packages(target) / _NODE_PTH).write_text("".join(
                f"import site; site.addsitedir({d!r})\n" for d in node_site_dirs()))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        (target / _DONE).touch()
        logger.info("Environment %s built: %d bytes", target, _size(target))

    def modify_context(self, uris: list[str], runtime_env: RuntimeEnv,
                       context: RuntimeEnvContext, logger: logging.Logger) -> None:
        if not uris:
            return
        target = self._path(uris[0])
        python = target / "bin" / "python"
        if not python.exists():
            raise ValueError(f"the environment {target} is missing on this node; its "
                             "build may have failed (see the runtime_env set-up log)")
        # Ray's py_executable: workers start with the env's Python; the entrypoint's shell
        # gets it first on PATH, as Ray's own uv and pip environments do.
        context.py_executable = str(python)
        context.env_vars[MARK_VAR] = target.name
        context.command_prefix += ["source", str(target / "bin" / "activate"), "1>&2", "&&"]

    def delete_uri(self, uri: str, logger: logging.Logger) -> int:
        target = self._path(uri)
        size = _size(target)
        logger.info("Deleting environment %s (%d bytes)", target, size)
        shutil.rmtree(target, ignore_errors=True)
        self._locks.pop(uri, None)
        return size


def _size(path: Path) -> int:
    """Bytes in ``path``, each file once (hard links into uv's cache count where they are)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            stat = os.lstat(os.path.join(root, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total
