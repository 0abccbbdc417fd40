"""A run's working folder on one node and the steps made in it: the run's code fetched into
it, the ``-m`` resources mounted, the command run there, and what the command made or changed
saved as outputs. The runner has one; so has each rank of a distributed run, on its own node,
so every rank sees the same files a single run would.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Protocol

from spellray.errors import InvalidInput
from spellray.runner.command import Command
from spellray.runner.live_sync import LiveSync
from spellray.runner.spell_folder import prepare as prepare_spell_folder
from spellray.storage.code_package import changed_files, file_crc32, unpack
from spellray.storage.mounts import in_spell_folder
from spellray.storage.paths import join
from spellray.storage.store import Storage

SPELL_DIR = ".spell"  # the run's own files in runs/<id>/ (log, run.json): not outputs
_RANK_FOLDER = re.compile(r"rank-\d+/")


class Log(Protocol):
    """Where the steps write: the run's log (LogSink), or a rank's buffer of lines."""

    def write(self, data: bytes) -> None: ...

    def line(self, text: str) -> None: ...


class WorkDir:
    def __init__(self, path: Path, storage: Storage, run_id: int, log: Log) -> None:
        self.path = path
        self.storage = storage
        self.run_id = run_id
        self.log = log
        # Where send_metric writes: beside the folder, so it never becomes an output.
        self.metrics_file = path.with_name(f"{path.name}.metrics.jsonl")
        # What was there before the command (name -> CRC32): only new or changed files are
        # outputs.
        self.manifest: dict[str, int] = {}
        # What -m materialized: kept out of the outputs, and reported in the run's result.
        self.mount_paths: set[str] = set()
        self.mounted: list[dict] = []
        self.outside_mounts: list[Path] = []  # absolute -m paths, removed at cleanup
        self.command = Command()
        # Whether this folder's run() says in the log that /spell is unavailable: once per
        # run, so a distributed run's ranks other than 0 keep quiet.
        self.announce = True
        # --tensorboard-dir: a folder in this one saved into storage as the command runs
        # (set before run()); its copies are outputs already when the run ends.
        self.live_folder: str | None = None
        self.live: LiveSync | None = None
        # Auto-resume (docs/spot.md): the whole folder's new and changed files are saved as
        # the run goes (set before run()); ``restored``: what a resumed run started with.
        self.sync_outputs = False
        self.restored: set[str] = set()
        # Where this folder's outputs go in runs/<id>/: "" (the run's own, or rank 0's), or
        # "rank-K/" for a distributed run's rank K.
        self.output_prefix = ""

    def fetch_code(self, record: dict) -> None:
        """Put the run's code (its git commit or code package) in the folder."""
        if git := record.get("git"):
            from spellray.storage.git_source import fetch_commit

            fetch_commit(git["url"], git["commit"], self.path, self.log.line)
            self.manifest = {p.relative_to(self.path).as_posix(): file_crc32(p)
                             for p in self.path.rglob("*") if p.is_file() and not p.is_symlink()}
        elif code := record.get("code"):
            data = self.storage.read_bytes(join("code", f"{code['sha256']}.zip"))
            self.manifest = unpack(data, self.path)

    def mount(self, mounts: list[dict]) -> None:
        """Materialize each `-m` resource before the command starts (local storage: links
        into it; object stores: through this node's cache)."""
        from spellray.settings import get_settings
        from spellray.storage.cache import NodeCache
        from spellray.storage.mounts import materialize

        if not mounts:
            return
        settings = get_settings()
        cache = NodeCache(settings.resolved_cache_dir(), settings.cache_limit_bytes)
        for mount in mounts:
            dest = self._mount_dest(mount["path"])
            try:
                result = materialize(self.storage, mount["resolved"], dest, cache)
            except InvalidInput as exc:
                if dest.is_relative_to(self.path):
                    raise
                raise InvalidInput(f"{exc.message} (absolute mount paths are shared by the "
                                   "runs on a node: mount under /spell/ or at a relative "
                                   "path to give the run its own)") from None
            if dest.is_relative_to(self.path):
                self.mount_paths.add(dest.relative_to(self.path).as_posix())
            else:
                self.outside_mounts.append(dest)
            self.mounted.append({"resource": mount["resource"], "path": mount["path"],
                                 "files": result.files, "bytes": result.bytes,
                                 "bytes_downloaded": result.bytes_downloaded,
                                 "seconds": round(result.seconds, 4),
                                 "listing_seconds": round(result.listing_seconds, 4)})
            self.log.line(f"spellray: mounted {mount['resource']} at {mount['path']} "
                          f"({result.files} files, {result.bytes_downloaded} bytes downloaded "
                          f"in {result.seconds:.2f} s)")

    def _mount_dest(self, path: str) -> Path:
        """Where a mount path is on this node. Relative paths and paths under /spell/ (Spell's
        working folder) are in the run's folder: the run's own, never another's. Any other
        absolute path is made on the node itself, as Spell's users mean it (`-m
        uploads/data:/data`): without a container there is no per-run place for it, so two
        runs on a node that mount at the same place collide (the second fails, clearly),
        and what is written there is not an output; it is removed when the run ends."""
        if (inside := in_spell_folder(path)) is not None:
            if not inside:
                raise InvalidInput(f"cannot mount at {path}: /spell is the run's working "
                                   "folder itself; mount under it, such as /spell/data")
            return self.path / inside
        dest = Path(path)
        return dest if dest.is_absolute() else self.path / dest

    def run(self, command: str, env: dict[str, str]) -> int:
        """Run the command in the folder, its output into the log; its exit code. Where the
        node allows it the folder is /spell for the command (runner/spell_folder.py). CUDA
        numbers GPUs as NVML and Ray do (hardware_stats.gpu_order_env)."""
        from spellray.runner.hardware_stats import gpu_order_env
        from spellray.settings import get_settings

        env = {**gpu_order_env(), **env}
        folder = prepare_spell_folder(self.path, get_settings().spell_folder)
        if folder.unavailable and self.announce:
            self.log.line(f"spellray: /spell paths are not available to this run: "
                          f"{folder.unavailable}. Its working folder is {self.path}; "
                          "-m mounts under /spell/ are there.")
        settings = get_settings()
        if self.sync_outputs:  # one copier for the whole folder, the TensorBoard folder too
            self._start_live_sync("", settings.output_sync_seconds if self.live_folder is None
                                  else min(settings.output_sync_seconds,
                                           settings.live_sync_seconds))
        elif self.live_folder is not None:
            self._start_live_sync(self.live_folder, settings.live_sync_seconds)
        return self.command.run(command, self.path, env, self.log.write, folder.prefix)

    def _start_live_sync(self, folder: str, interval: float) -> None:
        dest = join("runs", self.run_id, self.output_prefix)
        self.live = LiveSync(self.path, folder, self.storage, dest, interval,
                             skip=self.mount_paths, on_error=self.log.line,
                             fresh=self.restored)
        self.live.start()
        if self.announce:
            self.log.line(f"spellray: saving {folder or '.'}/ to {dest}/{folder} as the run "
                          f"goes (every {interval:g} s)")

    def restore_outputs(self, from_run: int) -> None:
        """A resumed run's folder starts with the outputs the interrupted run saved (its
        checkpoints), over its code, like a mount but writable; they are this run's outputs
        too (not in the manifest), so a chain of resumes carries them on. Rank folders
        (rank-K/) and the run's .spell/ are not the working folder's; a rank K's folder
        starts with the interrupted run's rank-K/."""
        source = join("runs", from_run, self.output_prefix)
        files = [e for e in self.storage.list(source, recursive=True) if not e.is_dir]
        size = 0
        for entry in files:
            rel = entry.path[len(source) + 1:]
            if not self.output_prefix and (rel.startswith(f"{SPELL_DIR}/")
                                           or _RANK_FOLDER.match(rel)):
                continue
            size += self.storage.download_file(entry.path, self.path / rel)
            self.manifest.pop(rel, None)
            self.restored.add(rel)
        self.log.line(f"spellray: resumed from run {from_run}: {len(self.restored)} saved "
                      f"output file(s) ({size} bytes) put in the working folder")

    def save_outputs(self, prefix: str = "") -> list[str]:
        """Upload what the command made or changed to ``runs/<id>/<prefix>``; the paths as
        the run's outputs list them."""
        if self.live is not None:  # its last pass first: then its copies are whole
            self.live.close(final=True)
        saved = []
        for rel in changed_files(self.path, self.manifest, skip=self.mount_paths):
            if not (self.live is not None and prefix == self.output_prefix
                    and self.live.is_saved(rel)):
                self.storage.upload_file(self.path / rel,
                                         join("runs", self.run_id, prefix + rel))
            saved.append(prefix + rel)
        return saved

    def cleanup(self) -> None:
        """Remove the folder, the metrics file beside it, and the mounts outside it."""
        if self.live is not None:  # `spell kill`: no last pass
            self.live.close(final=False)
        shutil.rmtree(self.path, ignore_errors=True)
        self.metrics_file.unlink(missing_ok=True)
        for dest in self.outside_mounts:
            if dest.is_symlink() or dest.is_file():
                dest.unlink(missing_ok=True)
            else:
                shutil.rmtree(dest, ignore_errors=True)
