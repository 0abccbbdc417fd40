"""Spell's ``/spell`` folder. On Spell a run's working folder was ``/spell``, and scripts,
mounts and TensorBoard folders name it (``-m runs/414/ckpt.pth:/spell/checkpoints/ckpt.pth``).
Here many runs share a node, each in a folder of its own, so:

- a mount path under ``/spell/`` names a place in the run's working folder, on every node
  (``storage.mounts.in_spell_folder``): what lands there is the run's own, and what the run
  writes there is an output like any other;
- where the node allows it, the user's command runs in a private mount namespace of its own
  in which the run's folder is bind-mounted on ``/spell`` and is the working directory, so
  ``/spell/...`` in the user's code works, each run seeing its own (``prepare``). Where it
  does not, the run's log says why, once, and the command runs in the folder as before.

The namespace is made by util-linux's ``unshare`` (``--map-root-user`` when the runner is not
root: a user namespace, where the kernel allows unprivileged ones). ``unshare`` and the set-up
shell both ``exec``: the process the runner starts IS the user's shell, in the same process
group, so SIGTERM and SIGKILL of the group reach the user's processes as without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from spellray.storage.mounts import SPELL_ROOT

# Run by /bin/sh inside the new namespace: $0 is the run's folder, "$@" the user's shell and
# command. mount(8) of a bind in a private namespace is seen by this process tree only.
_SETUP = 'mount --bind "$0" /spell && cd /spell && exec "$@"'


@dataclass(frozen=True)
class SpellFolder:
    """How the user's command is started: ``prefix`` goes before its shell (empty: no
    namespace); ``unavailable`` says why ``/spell`` is not the command's folder."""

    prefix: list[str] = field(default_factory=list)
    unavailable: str | None = None


def prepare(workdir: Path, mode: str) -> SpellFolder:
    """Make ``/spell`` the run's folder for its command, if this node allows it. ``mode`` is
    SPELLRAY_SPELL_FOLDER: ``auto`` (where possible) or ``off``."""
    if mode == "off":
        return SpellFolder(unavailable="turned off on this node (SPELLRAY_SPELL_FOLDER=off)")
    if not sys.platform.startswith("linux"):
        return SpellFolder(unavailable="mount namespaces need Linux")
    unshare, mount = shutil.which("unshare"), shutil.which("mount")
    if unshare is None or mount is None:
        return SpellFolder(unavailable="util-linux's unshare and mount are not on this node")
    try:
        # The mount point must exist on the node; it stays empty there (every run binds its
        # own folder over it, in its own namespace).
        Path(SPELL_ROOT).mkdir(exist_ok=True)
    except OSError as exc:
        return SpellFolder(unavailable=f"/spell is missing on this node and cannot be made "
                                       f"({exc.strerror or exc}; an administrator can run "
                                       "`mkdir /spell`)")
    user = ["--map-root-user"] if os.geteuid() != 0 else []
    prefix = [unshare, "--mount", "--propagation", "private", *user, "--",
              "/bin/sh", "-c", _SETUP, str(workdir)]
    if (why := _probe(prefix)) is not None:
        return SpellFolder(unavailable=why)
    return SpellFolder(prefix=prefix)


# What the probe found, once per process: a search's trial actor runs many runs, and the
# node does not change between them (each probe is three processes).
_probed: list[str | None] = []


def _probe(prefix: list[str]) -> str | None:
    """Why the namespace cannot be made here; None if it can. Tried once with a trivial
    command: what fails here (no CAP_SYS_ADMIN in a container, user namespaces disabled,
    seccomp) would otherwise fail the user's command itself."""
    if _probed:
        return _probed[0]
    try:
        probe = subprocess.run([*prefix, "/bin/sh", "-c", "pwd"], capture_output=True,
                               timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no private mount namespace: {exc}"  # not kept: may pass next time
    why = None
    if probe.returncode != 0 or probe.stdout.strip() != str(SPELL_ROOT).encode():
        said = probe.stderr.decode(errors="replace").strip().splitlines()
        why = f"no private mount namespace here: " \
              f"{said[-1] if said else f'exit code {probe.returncode}'}"
    _probed.append(why)
    return why
