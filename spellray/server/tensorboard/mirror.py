"""A local mirror of a run's TensorBoard folder in storage (local, S3 or GCS alike).

TensorBoard reads a local folder and notices appended records, so the mirror copies only
what changed: a new file whole, a grown one's new bytes appended (event files only grow),
and a file that shrank (rewritten) whole again. Whole files land under a temp name first,
so TensorBoard never reads half of a new file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from spellray.errors import NotFound
from spellray.storage.store import Storage


def mirror_folder(storage: Storage, source: str, dest: Path) -> int:
    """Bring ``dest`` up to date with storage folder ``source``; the bytes copied."""
    copied = 0
    for entry in storage.list(source, recursive=True):
        if entry.is_dir:
            continue
        local = dest / entry.path.removeprefix(source.rstrip("/") + "/")
        have = local.stat().st_size if local.exists() else None
        if have == entry.size:
            continue
        try:
            if have is not None and have < entry.size:
                data = storage.read_bytes(entry.path, offset=have)
                with local.open("ab") as out:
                    out.write(data)
                copied += len(data)
            else:
                local.parent.mkdir(parents=True, exist_ok=True)
                # Not named like the file: TensorBoard reads any name holding "tfevents".
                partial = local.parent / f".partial-{uuid.uuid4().hex}"
                copied += storage.download_file(entry.path, partial)
                os.replace(partial, local)
        except NotFound:
            continue  # removed since the listing
    return copied
