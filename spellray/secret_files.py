"""Files that hold tokens: written 0600 from the start and swapped in whole, so no reader
sees them half-written and no other user can read them for a moment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_secret_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_secret_json(path: Path, data: Any) -> None:
    write_secret_text(path, json.dumps(data, indent=2))
