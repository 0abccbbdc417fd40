"""Code from a git repository instead of the local folder (``spell run --github-url``).

The server pins the ref to a full commit sha with ``resolve_remote`` at submission, so a run, its
record and --idempotent all name the same code; the runner then fetches exactly that commit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from spellray.errors import InvalidInput, StorageError

LS_REMOTE_TIMEOUT = 60
FETCH_TIMEOUT = 900

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
_SHORT_SHA = re.compile(r"[0-9a-fA-F]{4,39}")
_URL_SCHEME = re.compile(r"(https?|ssh|git|file)://\S+")
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+")


def _check_url(url: str) -> None:
    # An allowlist shuts out option injection ("-u...", "--upload-pack=") and "ext::" transports,
    # which run arbitrary commands.
    if url.startswith("-") or not (_URL_SCHEME.fullmatch(url) or _SCP_LIKE.fullmatch(url)):
        raise InvalidInput(
            f"{url!r} is not a git URL spellray accepts: give https://, http://, ssh://, git://, "
            "file:// or git@host:path"
        )


def _git(args: list[str], cwd: Path | None, timeout: float) -> subprocess.CompletedProcess[str]:
    # No prompts ever: a run must fail with a message, not hang waiting for a password.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False)


_BOILERPLATE = ("fatal: Could not read from remote repository.",
                "Please make sure you have the correct access rights", "and the repository exists.")


def _last_line(stderr: str) -> str:
    """git's own reason: its last line that is not the generic advice after every failure."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and not line.strip().startswith(_BOILERPLATE)]
    return lines[-1] if lines else "no message from git"


def resolve_remote(url: str, ref: str | None) -> str:
    """The full commit sha that ``ref`` (branch, tag, refs/..., full sha; None = HEAD) names."""
    _check_url(url)
    if ref is not None and _FULL_SHA.fullmatch(ref):
        return ref.lower()  # ls-remote lists refs, not commits; fetch_commit checks it exists
    if ref is not None and (not ref or ref.startswith("-")):
        raise InvalidInput(f"{ref!r} is not a git ref: give a branch, a tag or a full commit sha")
    wanted = ref or "HEAD"
    try:
        # "v1" alone does not match an annotated tag's peeled line "refs/tags/v1^{}".
        done = _git(["ls-remote", "--", url, wanted, f"{wanted}^{{}}"], None, LS_REMOTE_TIMEOUT)
    except FileNotFoundError:
        raise InvalidInput("git is not installed: install git to use --github-url") from None
    except subprocess.TimeoutExpired:
        raise InvalidInput(
            f"git ls-remote {url} gave no answer in {LS_REMOTE_TIMEOUT} s: check the URL and "
            "that this machine can reach it"
        ) from None
    if done.returncode != 0:
        raise InvalidInput(
            f"cannot read the git repository {url}: check the URL and your access to it "
            f"({_last_line(done.stderr)})"
        )
    refs = {}
    for line in done.stdout.splitlines():
        sha, _, name = line.partition("\t")
        refs[name.strip()] = sha.strip().lower()
    # Git's own order for a short name: tags before branches; a tag names its peeled commit.
    names = [wanted] if wanted == "HEAD" or wanted.startswith("refs/") else [
        f"refs/{wanted}", f"refs/tags/{wanted}", f"refs/heads/{wanted}"]
    for name in names:
        sha = refs.get(f"{name}^{{}}") or refs.get(name)
        if sha:
            return sha
    if ref is None:
        raise InvalidInput(f"the git repository {url} has no commits (no HEAD): push a commit "
                           "or give --github-ref")
    if _SHORT_SHA.fullmatch(ref):
        raise InvalidInput(f"{ref!r} is not a branch or tag of {url}: give the full 40-character "
                           "commit sha, or a branch or tag")
    raise InvalidInput(f"{ref!r} is not a branch or tag of {url}: check --github-ref")


def fetch_commit(url: str, commit: str, dest: Path,
                 log: Callable[[str], None] | None = None) -> None:
    """Make ``dest`` (missing or empty) hold exactly ``commit`` of ``url``, without ``.git``.

    Fetches only that commit when the server allows a sha in a want (protocol v2 servers
    generally do), else every branch and tag. Submodules are not checked out.
    """
    _check_url(url)
    if not _FULL_SHA.fullmatch(commit):
        raise InvalidInput(f"{commit!r} is not a full 40-character commit sha")
    commit = commit.lower()
    if dest.exists() and any(dest.iterdir()):
        raise StorageError(f"cannot fetch code into {dest}: the folder is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _line: None)
    say(f"spellray: fetching {url} at {commit[:12]}")
    started = time.monotonic()

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        try:
            return _git(list(args), dest, FETCH_TIMEOUT)
        except FileNotFoundError:
            raise StorageError("git is not installed on the node: install git in the node "
                               "image to use --github-url") from None
        except subprocess.TimeoutExpired:
            raise StorageError(f"git {args[0]} of {url} took over {FETCH_TIMEOUT} s: check the "
                               "node can reach the repository") from None

    done = git("init", "-q")
    if done.returncode != 0:
        raise StorageError(f"git init in {dest} failed: {_last_line(done.stderr)}")
    how = "shallow"
    done = git("fetch", "-q", "--depth", "1", "--no-tags", "--", url, commit)
    if done.returncode != 0:
        # Servers that refuse unadvertised objects still serve every ref in full.
        how = "full"
        done = git("fetch", "-q", "--", url, "+refs/heads/*:refs/remotes/origin/*",
                   "+refs/tags/*:refs/tags/*")
        if done.returncode != 0:
            raise InvalidInput(f"cannot fetch the git repository {url}: check the URL and that "
                               f"the node can reach it ({_last_line(done.stderr)})")
    done = git("-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit)
    if done.returncode != 0:
        raise InvalidInput(f"commit {commit} is not in {url} (was it force-pushed away?): "
                           f"give a current branch, tag or sha ({_last_line(done.stderr)})")
    head = git("rev-parse", "HEAD").stdout.strip().lower()
    if head != commit:
        raise StorageError(f"git checked out {head or 'nothing'} instead of {commit} from {url}")
    # The run's working folder holds only the code; its outputs are the files the run creates.
    shutil.rmtree(dest / ".git")
    say(f"spellray: fetched {url} at {commit[:12]} ({how}) in {time.monotonic() - started:.1f} s")
