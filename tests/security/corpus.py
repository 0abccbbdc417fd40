"""Hostile resource paths: each tries to leave the storage root, or to look like a safe path
while meaning another. Built from escape stems and the prefixes a real path starts with, so
every trick is tried where a check might be skipped (at the root, under runs/, a link...)."""

from __future__ import annotations

from urllib.parse import quote

# Files the tests put outside storage (see test_path_fuzz.py): ``OUTSIDE`` is the folder beside
# storage/ in the server's home, ``SECRET`` a file in it.
OUTSIDE = "outside"
SECRET = "outside/secret.txt"

TRAVERSALS = [
    "..", "../..", "../../..", f"../{SECRET}", f"../../{SECRET}", f"./../{SECRET}",
    f"x/../../{SECRET}", f"x/./../../{SECRET}", "../token", "../state.db", "....//....//",
    ".../...", f"..//{SECRET}", f"../{OUTSIDE}/", "../../../../../../../../etc/passwd",
]
ENCODED = [
    f"%2e%2e/{SECRET}", f"%2E%2E%2F{SECRET}", f"..%2f{SECRET}", f"%2e%2e%2f%2e%2e%2f{SECRET}",
    f"%252e%252e%252f{SECRET}", f"%25252e%25252e/{SECRET}", f"..%5c{SECRET}",
    f"%c0%ae%c0%ae/{SECRET}", f"%c0%ae%c0%ae%c0%af{SECRET}", f"..%c0%af{SECRET}",
    f"%u002e%u002e/{SECRET}", f".%2e/{SECRET}", f"%2e./{SECRET}", "%2e%2e", "%252e%252e",
    f"{quote(quote('../'))}{SECRET}",
]
NUL_AND_CONTROL = [
    f"..\x00/{SECRET}", "data\x00.txt", f"x\x00/../../{SECRET}", "%00", f"..%00/{SECRET}",
    "x\n../..", "x\r\n", "\x7f..", "\x1b[2J", "x\t..",
]
BACKSLASHES = [
    f"..\\{SECRET}", f"..\\..\\{SECRET}", "\\etc\\passwd", "\\\\server\\share\\x",
    f"x\\..\\..\\{SECRET}", "C:\\Windows\\win.ini", "..\\",
]
ABSOLUTE = [
    "/etc/passwd", "//etc/passwd", "/", "~", "~/.ssh/id_rsa", "~root/.bashrc",
    "file:///etc/passwd", "s3://another-bucket/x", "gs://another-bucket/x", "C:/Windows",
    "/proc/self/environ", "/dev/zero",
]
SYMLINKS = [  # made by the test inside storage, pointing out of it
    "uploads/evil/dir", "uploads/evil/dir/secret.txt", "uploads/evil/file", "uploads/evil/etc",
    "uploads/evil/etc/passwd", "uploads/evil", "uploads/evil/dir/../dir/secret.txt",
    "uploads/evil/gone", "uploads/evil/gone/x",
]
LONG = [
    "a" * 256, "a" * 4096, "x/" * 2000 + "y", "é" * 200, ".." * 500, "../" * 300,
    "uploads/" + "n" * 10_000,
]
UNICODE = [
    f"\uff0e\uff0e/{SECRET}",            # fullwidth full stops
    f"\uff0e\uff0e\uff0f{SECRET}",       # and a fullwidth solidus
    f"..\u2215{SECRET}",                 # division slash
    f"..\u2044{SECRET}",                 # fraction slash
    f"..\uff3c{SECRET}",                 # fullwidth reverse solidus
    f"\u2024\u2024/{SECRET}",            # one dot leader, twice
    f"\u2025/{SECRET}",                  # two dot leader
    f"\u202e../{SECRET}",                # right-to-left override
    f"..\u200b/{SECRET}",                # zero-width space
    f"\ufeff../{SECRET}",                # byte order mark
    f".\u0307./{SECRET}",                # a combining dot above
    "caf\u00e9", "cafe\u0301",            # NFC and NFD of one name
    f"\u0130../{SECRET}", "\U0001f4a9/..", "\ud800", "x\u2028y",
]
OTHER = [
    " ../", ".. /", "../ ", "...", "?path=..", "#..", "%", "%%", "uploads/data?x=../..",
    "uploads/data#/../..", "*", "uploads/*", "uploads/data/.", "./", ".", "",
]
STEMS = [*TRAVERSALS, *ENCODED, *NUL_AND_CONTROL, *BACKSLASHES, *ABSOLUTE, *LONG, *UNICODE,
         *OTHER]
# Where a check might be skipped: nowhere, under each storage root, under a link.
PREFIXES = ["", "runs/", "runs/1/", "uploads/", "uploads/data/", "public/", "workspaces/",
            "fz-link/"]


def hostile_paths() -> list[str]:
    """Every stem, and every stem under each prefix; duplicates dropped, order kept."""
    paths = [*STEMS, *SYMLINKS]
    paths += [prefix + stem for prefix in PREFIXES[1:] for stem in STEMS if stem]
    return list(dict.fromkeys(paths))


def sample(paths: list[str], count: int) -> list[str]:
    """``count`` paths spread over the corpus (every kind), the same ones each time."""
    step = max(1, len(paths) // count)
    return paths[::step][:count]
