"""The run's log: echoed to stdout (Ray keeps it too) and written to storage as it goes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from spellray.storage.store import Storage


class LogSink:
    """Appends lines to ``runs/<id>/.spell/log``: straight into the file on local storage; on
    object storage a local copy is uploaded whole every few seconds and at the end."""

    UPLOAD_EVERY = 3.0

    def __init__(self, storage: Storage, path: str, local_copy: Path) -> None:
        self._storage = storage
        self._path = path
        self._local_copy = local_copy
        self._append = storage.open_append(path)
        self._copy = None if self._append else local_copy.open("ab")
        self._last_upload = 0.0

    def write(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        if self._append is not None:
            self._append.write(data)
            self._append.flush()
            return
        assert self._copy is not None
        self._copy.write(data)
        if time.monotonic() - self._last_upload > self.UPLOAD_EVERY:
            self.sync()

    def line(self, text: str) -> None:
        self.write(f"{text}\n".encode())

    def tail(self, size: int) -> bytes:
        """The log's last ``size`` bytes so far (a workspace's failure quotes Jupyter's)."""
        stream = self._append or self._copy
        assert stream is not None
        stream.flush()
        with open(stream.name, "rb") as log:
            log.seek(max(0, log.seek(0, 2) - size))
            return log.read()

    def sync(self) -> None:
        if self._copy is not None:
            self._copy.flush()
            self._storage.upload_file(self._local_copy, self._path)
            self._last_upload = time.monotonic()

    def close(self) -> None:
        self.sync()
        for stream in (self._append, self._copy):
            if stream is not None:
                stream.close()
