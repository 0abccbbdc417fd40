"""Debian packages a run asked for (``spell run --apt PKG``), installed before its command.

Names are checked against Debian's rule and passed to apt-get as argv, never through a shell.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable

from spellray.errors import InvalidInput, SpellrayError

# Debian policy: lowercase letters, digits, + - . ; at least 2 characters; starts alphanumeric.
# An optional =version pins one (Debian versions start with a digit, or an epoch digit).
_PACKAGE = re.compile(r"(?P<name>[a-z0-9][a-z0-9+.-]+)(=(?P<version>[0-9][A-Za-z0-9.+~:-]*))?")
# apt-get's messages when its package lists do not know a package or version (yet).
_STALE_LISTS = ("Unable to locate package", "has no installation candidate",
                "was not found", "Failed to fetch", "apt-get update")
# dpkg's 5%-step progress, one line each when not on a terminal: noise in a run's log.
_PROGRESS = re.compile(r"\(Reading database \.\.\. \d+%$")


def _installed(name: str, version: str | None) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", "--", name],
                          capture_output=True, text=True, check=False)
    status, _, have = done.stdout.partition("\t")
    return (done.returncode == 0 and status == "install ok installed"
            and (version is None or have == version))


def _apt_get(args: list[str], log: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run apt-get, streaming its output to ``log``; its exit code and error lines."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    errors: list[str] = []
    last = ""
    # stderr joins stdout so the log keeps apt's order; "E:" lines are its errors.
    with subprocess.Popen(["apt-get", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, env=env, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            if line and not _PROGRESS.fullmatch(line):
                log(f"spellray: apt: {line}")
                last = line
                if line.startswith("E:"):
                    errors.append(line)
    return proc.returncode, errors or [last or "apt-get printed nothing"]


def install(packages: list[str], log: Callable[[str], None], *,
            euid: int | None = None) -> list[str]:
    """Install the missing ``packages``; return those installed (empty if all were present).

    ``euid`` stands in for ``os.geteuid()`` (a test seam for a non-root node).
    """
    wanted = []
    for spec in packages:
        match = _PACKAGE.fullmatch(spec)
        if not match:
            raise InvalidInput(f"--apt {spec!r} is not a Debian package name: use lowercase "
                               "letters, digits and + - . (optionally name=version)")
        wanted.append((spec, match["name"], match["version"]))
    missing = []
    for spec, name, version in wanted:
        if _installed(name, version):
            log(f"spellray: apt: {spec} already installed")
        elif spec not in missing:
            missing.append(spec)
    if not missing:
        return []
    if (os.geteuid() if euid is None else euid) != 0:
        raise SpellrayError(f"--apt needs root on the node to install {' '.join(missing)}: "
                            "install the packages in the node image or run Ray as root")
    if shutil.which("apt-get") is None:
        raise SpellrayError(f"--apt needs apt-get on the node to install {' '.join(missing)}: "
                            "use a Debian or Ubuntu node image, or install them in the image")
    started = time.monotonic()
    log(f"spellray: apt: installing {' '.join(missing)}")
    command = ["install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300",
               "--", *missing]
    code, errors = _apt_get(command, log)
    if code != 0 and any(stale in line for line in errors for stale in _STALE_LISTS):
        # Fresh images ship without package lists: read them once, then try again.
        log("spellray: apt: updating the package lists")
        update_code, update_errors = _apt_get(["update", "-o", "DPkg::Lock::Timeout=300"], log)
        if update_code != 0:
            raise SpellrayError(f"--apt could not update the package lists: {update_errors[-1]}")
        code, errors = _apt_get(command, log)
    if code != 0:
        unknown = any("Unable to locate package" in line for line in errors)
        raise (InvalidInput if unknown else SpellrayError)(
            f"--apt could not install {' '.join(missing)}: {errors[-1]}")
    log(f"spellray: apt: installed {' '.join(missing)} in {time.monotonic() - started:.1f} s")
    return missing
