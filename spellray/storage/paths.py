"""Resource paths: the one gate every storage path goes through, so none escapes the root."""

from __future__ import annotations

import posixpath
import re

from spellray.errors import InvalidInput, UnsafePath

# Percent-encodings of '.', '/', '\' and NUL: a path that carries them was encoded to slip
# past a check somewhere, and no resource name needs them.
# A run's hardware stats samples in its .spell/ folder: one JSON object a line (here, not
# in schemas/stats.py, so that the runner, which writes them, imports no pydantic).
STATS_FILE = "stats.jsonl"
# Metrics the runner could not hand the server before the run ended (the server was down
# past the runner's drain): the server takes them when it learns the run ended.
UNDELIVERED_METRICS_FILE = "metrics-undelivered.jsonl"

_ENCODED_ESCAPE = re.compile(r"%(2e|2f|5c|00|25)", re.IGNORECASE)
# A name longer than file systems allow (NAME_MAX), or a path longer than an S3 key may be:
# refused here in one line, not an OSError deep in a storage call.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


def clean_resource_path(path: str) -> str:
    """Return ``path`` as a normalized relative POSIX path ('' for the root), or raise.

    Refuses absolute paths, ``..`` segments, backslashes, control characters and encoded
    escapes, in the CLI and the API alike.
    """
    hint = "use a path inside storage such as runs/1/model"
    if any(ord(c) < 32 for c in path):
        raise UnsafePath(f"the path {path!r} has control characters; {hint}")
    if "\\" in path:
        raise UnsafePath(f"the path {path!r} has a backslash; {hint}")
    if _ENCODED_ESCAPE.search(path):
        raise UnsafePath(f"the path {path!r} has an encoded escape (%2e, %2f, ...); {hint}")
    if path.startswith("/") or path.startswith("~"):
        raise UnsafePath(f"the path {path!r} is absolute; {hint}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"the path {path!r} leaves the storage root ('..'); {hint}")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES or any(
            len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for p in parts):
        raise InvalidInput(f"the path {path[:60]!r}... is too long: use names of at most "
                           f"{MAX_NAME_BYTES} bytes and paths of at most {MAX_PATH_BYTES}")
    return posixpath.join(*parts) if parts else ""


def join(*parts: str | int) -> str:
    """Join path parts and clean the result."""
    return clean_resource_path("/".join(str(p) for p in parts))


# The top of the storage tree a user addresses; `code/` is internal.
ROOTS = ("runs", "uploads", "public", "workspaces")
# Spell's rule: an alias holds none of / . " \ [ ] : ; | = ,  (nor, here, whitespace or the
# URL characters % ? #: an alias travels in a URL path).
_BAD_ALIAS = re.compile(r'[/."\\\[\]:;|=,\s%?#]')


def validate_alias(alias: str) -> str:
    """A link name, or InvalidInput: it is resolved as the first segment of a path."""
    if not alias or len(alias) > 200 or _BAD_ALIAS.search(alias):
        raise InvalidInput(f"{alias!r} is not a valid link name: use 1-200 characters and "
                           'none of / . " \\ [ ] : ; | = , or spaces')
    if alias in (*ROOTS, "code"):
        raise InvalidInput(f"{alias!r} names a storage folder; pick another link name")
    return alias
