"""`-m RESOURCE[:PATH]` at submission: resolve links, check the resource exists, check PATH."""

from __future__ import annotations

import posixpath

from sqlalchemy.orm import Session

from spellray.errors import InvalidInput, NotFound
from spellray.schemas import Mount
from spellray.server import db
from spellray.server.ownership import path_owner, sees
from spellray.server.services.links import resolve
from spellray.server.services.run_archive import refuse_archived
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


def _hidden(session: Session, resource: str, target: str,
            owners: frozenset[str] | None) -> bool:
    """Another owner's run, upload, workspace or link: not there for this run."""
    head = resource.strip().strip("/").split("/", 1)[0]
    link = session.get(db.Link, head)
    return any(o is not None and not sees(owners, o)
               for o in (path_owner(session, target), link.owner if link else None))


def resolve_mounts(session: Session, storage: Storage, mounts: list[Mount],
                   owners: frozenset[str] | None = None) -> list[Mount]:
    """``owners``: whose things the run may mount (its owner's view; None: everyone's)."""
    resolved: list[Mount] = []
    for mount in mounts:
        target = resolve(session, mount.resource)
        if not target or ("/" not in target and target != "public"):
            raise InvalidInput(f"mount a resource inside runs/, uploads/, workspaces/ or "
                               f"public/, not {mount.resource!r} (e.g. -m runs/42/model:model)")
        if not storage.exists(target) or _hidden(session, mount.resource, target, owners):
            raise NotFound(f"cannot mount {mount.resource}: there is no {target} in storage "
                           "(`spell ls` shows what there is)")
        refuse_archived(session, target, f"cannot mount {mount.resource}")
        resolved.append(Mount(resource=mount.resource, path=_mount_path(mount), resolved=target))
    # Where each lands: /spell/data and data are one place, the run's folder's data.
    paths = [in_spell_folder(m.path) or m.path for m in resolved]
    for path in paths:
        if any(other != path and other.startswith(f"{path}/") for other in paths) or \
                paths.count(path) > 1:
            raise InvalidInput(f"two mounts overlap at {path}; give each its own path")
    return resolved


def tensorboard_folder(path: str, mounts: list[Mount]) -> str:
    """--tensorboard-dir PATH as the folder of the run's working folder it names (POSIX,
    relative; "" for the folder itself). Refused: a PATH that leaves the working folder, and
    a mount into that folder or around it: the runner copies the folder's new files into
    storage as the run goes, and a mount's files there are the storage's own."""
    flag = f"--tensorboard-dir {path}"
    text = path.strip()
    if not text or any(ord(c) < 32 for c in text) or "\\" in text:
        raise InvalidInput(f"{flag}: give a folder of the run's working folder, such as "
                           "tb or /spell/tb")
    if posixpath.isabs(text):
        folder = in_spell_folder(text)
        if folder is None:
            raise InvalidInput(f"{flag}: an absolute path must be under /spell/ (the run's "
                               "working folder), such as /spell/tb; or give a relative path")
    else:
        parts = [p for p in text.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise InvalidInput(f"{flag}: the path leaves the run's working folder; give a "
                               "folder inside it, such as tb or /spell/tb")
        folder = "/".join(parts)
    if folder.split("/")[0] == ".spell":  # runs/<id>/.spell/ is spellray's: log, run.json
        raise InvalidInput(f"{flag}: .spell is spellray's own folder of a run; pick "
                           "another, such as tb")
    for mount in mounts:
        where = in_spell_folder(mount.path)
        if where is None and posixpath.isabs(mount.path):
            continue  # on the node, outside the working folder
        where = where if where is not None else mount.path
        if not folder or where == folder or where.startswith(f"{folder}/") or \
                folder.startswith(f"{where}/"):
            raise InvalidInput(f"{flag}: the mount of {mount.resource} at {mount.path} is "
                               "inside the TensorBoard folder (or holds it); mount it "
                               "elsewhere or pick another --tensorboard-dir")
    return folder
