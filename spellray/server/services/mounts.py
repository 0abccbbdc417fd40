"""`-m RESOURCE[:PATH]` at submission: resolve links, check the resource exists, check PATH."""

from __future__ import annotations

import posixpath

from sqlalchemy.orm import Session

from spellray.errors import InvalidInput, NotFound
from spellray.schemas import Mount
from spellray.server.services.links import resolve
from spellray.storage.mounts import in_spell_folder
from spellray.storage.store import Storage


def _mount_path(mount: Mount) -> str:
    path = mount.path.strip()
    if not path:
        raise InvalidInput(f"the mount of {mount.resource} has an empty path")
    if any(ord(c) < 32 for c in path) or "\\" in path:
        raise InvalidInput(f"the mount path {path!r} has odd characters")
    if posixpath.isabs(path):
        if in_spell_folder(path) == "":
            raise InvalidInput(f"cannot mount at {path}: /spell is the run's working folder "
                               "itself; mount under it, such as /spell/data")
        # Spell's `-m runs/42:/mnt/model`: an absolute path on the node, made by the runner
        # (under /spell/: in the run's working folder).
        return posixpath.normpath(path)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidInput(f"the mount path {path!r} leaves the run's working folder; use a "
                           "path such as data or /mnt/data")
    return "/".join(parts)


def resolve_mounts(session: Session, storage: Storage, mounts: list[Mount]) -> list[Mount]:
    resolved: list[Mount] = []
    for mount in mounts:
        target = resolve(session, mount.resource)
        if not target or ("/" not in target and target != "public"):
            raise InvalidInput(f"mount a resource inside runs/, uploads/ or public/, not "
                               f"{mount.resource!r} (e.g. -m runs/42/model:model)")
        if not storage.exists(target):
            raise NotFound(f"cannot mount {mount.resource}: there is no {target} in storage "
                           "(`spell ls` shows what there is)")
        resolved.append(Mount(resource=mount.resource, path=_mount_path(mount), resolved=target))
    # Where each lands: /spell/data and data are one place, the run's folder's data.
    paths = [in_spell_folder(m.path) or m.path for m in resolved]
    for path in paths:
        if any(other != path and other.startswith(f"{path}/") for other in paths) or \
                paths.count(path) > 1:
            raise InvalidInput(f"two mounts overlap at {path}; give each its own path")
    return resolved
