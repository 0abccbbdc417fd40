"""public/: read-only data sets shipped with spellray, written into storage on the server's
first start (and again if someone deleted them)."""

from __future__ import annotations

from pathlib import Path

from spellray.storage.paths import join
from spellray.storage.store import Storage

SHIPPED = Path(__file__).with_name("public_data")


def seed_public(storage: Storage) -> list[str]:
    """Write each shipped file that storage lacks; return what was written."""
    written = []
    for source in sorted(p for p in SHIPPED.rglob("*") if p.is_file()):
        target = join("public", source.relative_to(SHIPPED).as_posix())
        if storage.size(target) != source.stat().st_size:
            storage.upload_file(source, target)
            written.append(target)
    return written
