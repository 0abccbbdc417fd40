"""Users' keys in the head's ``authorized_keys``, each allowed the tunnel and nothing else.

When SPELLRAY_AUTHORIZED_KEYS_FILE is set (a cluster head's start command sets it to
``~/.ssh/authorized_keys``; unset, as on a laptop, nothing is written), the server rewrites
one marked block of that file at start and whenever a key is added or removed. Every line
outside the block (the launcher's own key, anyone's) stays as it was. Each key's line:

    restrict,port-forwarding,permitopen="127.0.0.1:PORT",permitlisten="127.0.0.1:1",
    command="..." ssh-ed25519 BASE64 spellray:USER:TITLE

- ``restrict`` turns off every forwarding, the agent, X11, a terminal and ~/.ssh/rc;
  ``port-forwarding`` with ``permitopen`` gives back the one forward `spell cluster use`
  opens (``ssh -N -L ...:127.0.0.1:PORT``, PORT the server's): any other host, port or
  Unix socket is refused.
- ``command=`` because ``restrict`` does not stop commands: without it ``ssh head cat
  ~/.spellray/token`` would run, and a shell on the head passes every owner check.
  ``ssh -N`` starts no command, so the tunnel is untouched.
- ``permitlisten`` on port 1 of the loopback, which the head's user may not bind: sshd has
  no "none" for a key, and ``-R`` listening on the head's loopback could squat a port the
  server later proxies to (TensorBoard, Jupyter). Remote Unix-socket forwards ignore
  ``permitlisten``: the head's sshd is told ``AllowStreamLocalForwarding local``
  (cluster/launcher_config.py).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from spellray.errors import InternalError

log = logging.getLogger(__name__)

BEGIN = "# spellray keys begin: written by the spellray server, edits in here are lost"
END = "# spellray keys end"
REFUSAL = "this key opens the spellray tunnel only: ssh -N -L PORT:127.0.0.1:{port} ..."


def key_line(public_key: str, user: str, title: str, port: int) -> str:
    """``public_key`` is ``TYPE BASE64`` as ssh_keys.PublicKey.line makes it, and ``user``
    and ``title`` passed their name checks: nothing here can open a quote or a new line."""
    refusal = REFUSAL.format(port=port)
    options = (f'restrict,port-forwarding,permitopen="127.0.0.1:{port}",'
               f'permitlisten="127.0.0.1:1",command="echo \'{refusal}\' >&2; exit 1"')
    return f"{options} {public_key} spellray:{user}:{title}"


def merged(existing: str, lines: Iterable[str]) -> str:
    """``existing`` with its spellray block replaced by one holding ``lines`` (at the end
    of the file; at its old place if it had one). A begin without an end, or an end without
    a begin, is refused: guessing where the block ends could delete someone's key."""
    kept: list[str] = []
    at: int | None = None
    inside = False
    for number, line in enumerate(existing.splitlines(), 1):
        if line.startswith("# spellray keys begin"):
            if inside:
                raise InternalError(f"line {number}: a second '# spellray keys begin' "
                                          "before its end; fix the file by hand")
            inside, at = True, len(kept) if at is None else at
        elif line.startswith(END):
            if not inside:
                raise InternalError(f"line {number}: '{END}' without its begin; fix "
                                          "the file by hand")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise InternalError("'# spellray keys begin' without its end; fix the file by "
                                  "hand")
    block = [BEGIN, *lines, END]
    where = len(kept) if at is None else at
    return "\n".join([*kept[:where], *block, *kept[where:]]) + "\n"


def foreign_keys(path: Path) -> set[str]:
    """The key bodies (base64) on the lines outside the block: the launcher's, anyone's. A
    user's key that is among them would be let in by that line's rights, not the tunnel's
    (sshd takes the first line that matches)."""
    try:
        text = path.read_text() if path.exists() else ""
    except (OSError, UnicodeDecodeError):
        return set()  # write() says what is wrong with the file
    found, inside = set(), False
    for line in text.splitlines():
        if line.startswith("# spellray keys begin"):
            inside = True
        elif line.startswith(END):
            inside = False
        elif not inside:
            found.update(word for word in line.split() if word.startswith("AAAA"))
    return found


def write(path: Path, lines: Iterable[str]) -> None:
    """Replace the block in ``path`` in one step (a temporary file renamed over it), mode
    0600, in a 0700 folder made if missing, as sshd's StrictModes wants. The caller keeps
    writers one at a time (services/keys.py)."""
    try:
        existing = path.read_text() if path.exists() else ""
        try:
            text = merged(existing, lines)
        except InternalError as exc:
            raise InternalError(f"{path}: {exc.message}") from None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".authorized_keys.")
        try:
            with os.fdopen(fd, "w") as f:  # mkstemp: mode 0600 from the start
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        os.chmod(path, 0o600)
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise InternalError(f"could not write {path}: {why}") from exc
    log.info("wrote the spellray keys in %s", path)
