"""Content-addressed code packages: the folder a run starts from, zipped deterministically.

The same files always give the same bytes (sorted names, fixed timestamps and modes), so the
sha256 of the zip names the code and unchanged code is never uploaded twice.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from spellray.errors import InvalidInput

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class CodePackage:
    data: bytes
    sha256: str
    file_count: int
    git_commit: str | None
    git_dirty: bool | None


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        return None
    return done.stdout if done.returncode == 0 else None


def list_code_files(folder: Path) -> tuple[list[str], str | None, bool | None]:
    """Files as git would track them (.gitignore respected), or all files outside git."""
    listed = _git(folder, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is not None:
        names = sorted({n for n in listed.split("\0") if n and (folder / n).is_file()})
        commit, dirty = _commit_and_dirty(folder)
        return names, commit, dirty
    names = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
        for name in files:
            path = Path(root) / name
            if path.is_file():
                names.append(path.relative_to(folder).as_posix())
    return sorted(names), None, None


def _commit_and_dirty(folder: Path) -> tuple[str | None, bool | None]:
    """HEAD's commit and whether tracked files changed, from one `git status` (each git
    process is milliseconds before every `spell run`)."""
    status = _git(folder, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:
        return None, None
    lines = status.splitlines()
    heads = [line.split()[2] for line in lines if line.startswith("# branch.oid ")]
    commit = heads[0] if heads and heads[0] != "(initial)" else None  # no commit yet
    return commit, any(not line.startswith("#") for line in lines)


def _check_size(where: str, total: int, limit_mb: int) -> None:
    if total > limit_mb * 1024 * 1024:
        raise InvalidInput(
            f"the code in {where} holds {total / 2**20:.0f} MB, over the "
            f"{limit_mb} MB limit: run from a smaller folder, list large files in .gitignore, "
            "or upload data with spell upload and mount it with -m"
        )


def _zip(files: list[tuple[str, bool, bytes]]) -> tuple[bytes, str]:
    """(name, executable, content) sorted by name -> the package bytes and their sha256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, executable, content in files:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def package_folder(folder: Path, limit_mb: int) -> CodePackage:
    folder = folder.resolve()
    names, commit, dirty = list_code_files(folder)
    _check_size(str(folder), sum((folder / n).stat().st_size for n in names), limit_mb)
    data, sha256 = _zip([(n, os.access(folder / n, os.X_OK), (folder / n).read_bytes())
                         for n in names])
    return CodePackage(data, sha256, len(names), commit, dirty)


def package_commit(folder: Path, ref: str, limit_mb: int) -> CodePackage:
    """`spell run -c REF`: the code of ``folder`` as it is in commit REF of its git
    repository, not as it is on disk. The same package format, so the same commit always
    gives the same sha256."""
    folder = folder.resolve()
    if ref.startswith("-"):
        raise InvalidInput(f"-c {ref!r} is not a commit; give a sha, branch or tag")
    if _git(folder, "rev-parse", "--git-dir") is None:
        raise InvalidInput(f"-c {ref}: {folder} is not in a git repository")
    commit = (_git(folder, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") or "").strip()
    if not commit:
        raise InvalidInput(f"-c {ref}: no such commit in the repository at {folder} "
                           "(git log shows the commits)")
    prefix = (_git(folder, "rev-parse", "--show-prefix") or "").strip()
    # `git archive COMMIT:PREFIX` is the tree of this folder at that commit, as git stores
    # it (no .gitignore'd files, no working-copy changes).
    done = subprocess.run(["git", "archive", "--format=tar", f"{commit}:{prefix}"],
                          cwd=folder, capture_output=True, check=False)
    if done.returncode != 0:
        raise InvalidInput(f"-c {ref}: {folder.name} is not in commit {commit[:12]}")
    files = []
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        for member in tar.getmembers():
            if member.isfile():  # symlinks and submodules are left out, as on disk
                content = tar.extractfile(member).read()  # type: ignore[union-attr]
                files.append((member.name, bool(member.mode & 0o111), content))
    files.sort()
    _check_size(f"commit {commit[:12]}", sum(len(c) for _, _, c in files), limit_mb)
    data, sha256 = _zip(files)
    return CodePackage(data, sha256, len(files), commit, False)


def unpack(data: bytes, dest: Path) -> dict[str, int]:
    """Unpack a code package into ``dest``; return its manifest (name -> CRC32)."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if dest.resolve() not in target.parents:
                raise InvalidInput(f"the code package has an unsafe entry {info.filename!r}")
            zf.extract(info, dest)
            mode = info.external_attr >> 16
            if mode:
                os.chmod(target, mode & 0o777)
            manifest[info.filename] = info.CRC
    return manifest


def file_crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def changed_files(folder: Path, manifest: dict[str, int], skip: set[str]) -> list[str]:
    """Files in ``folder`` that the run created or changed (its outputs), as relative paths."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder).as_posix()
        dirs[:] = [d for d in dirs if _rel(rel_root, d) not in skip]
        for name in files:
            rel = _rel(rel_root, name)
            path = Path(root) / name
            if rel in skip or path.is_symlink() or not path.is_file():
                continue
            if rel not in manifest or file_crc32(path) != manifest[rel]:
                found.append(rel)
    return sorted(found)


def _rel(root: str, name: str) -> str:
    return name if root == "." else f"{root}/{name}"
