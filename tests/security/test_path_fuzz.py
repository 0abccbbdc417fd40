"""Path fuzzing: every hostile path of the corpus (tests/security/corpus.py) against every
route that takes a resource path, over HTTP, and a sample through the real CLI.

An escape is any answer that carries a secret from outside storage (a planted file, the
admin token, /etc/passwd), or any change outside storage (the planted folder, the token, a
written payload found anywhere in the server's home but its storage). Answers are 4xx, or
what the path means inside storage; never 5xx.

The figure, printed last: ``paths, requests, escapes, 5xx``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.helpers import SPELL, RaylessServer
from tests.security.conftest import DEPTH, SHORT, storage_of
from tests.security.corpus import SECRET, hostile_paths, sample

pytestmark = pytest.mark.campaign

CANARY = f"CANARY-{uuid.uuid4().hex}"
PAYLOAD = f"PWNED-{uuid.uuid4().hex}".encode()
# Never sent to a route that writes or deletes: were the server to escape there, the test
# would damage the machine rather than the test's own folder. The read routes get them all.
_SYSTEM = ("etc", "proc", "dev", ".ssh", ".bashrc", "Windows", "win.ini", "~", "//")
# A parent step, plain or as the encodings and look-alikes a broken check might decode.
_UP = ("..", "%2e%2e", "%252e", "%25252e", "\uff0e\uff0e", "\u2025", "\u2024\u2024", "%c0%ae",
       "%u002e", ".%2e", "%2e.")


def _writable(path: str) -> bool:
    """At most three parent steps: storage is three folders down in the server's home."""
    steps = sum(path.lower().count(up) for up in _UP)
    return not path.startswith("/") and not any(s in path for s in _SYSTEM) and steps <= 3


def _holds_payload(path: Path) -> bool:
    return path.is_file() and not path.is_symlink() and path.stat().st_size < 2**20 \
        and PAYLOAD in path.read_bytes()


def _encoded(path: str) -> str:
    """Every byte percent-encoded, so no client normalizes the dots away on the way."""
    return "".join(f"%{b:02X}" for b in path.encode("utf-8", "surrogatepass"))


@dataclass
class Ground:
    """What the server may not leak or change: files outside storage, planted by the test."""

    home: Path  # the server's
    storage: Path
    run_id: int = 0
    requests: int = 0
    escapes: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)  # a CLI refusal not in one line

    @property
    def outside(self) -> Path:
        return self.storage.parent / "outside"

    @property
    def secret(self) -> Path:
        return self.storage.parent / SECRET

    def plant(self) -> None:
        """(Again, after a path removed some of it inside storage: that is allowed.)"""
        self.outside.mkdir(exist_ok=True)
        self.secret.write_text(CANARY)
        (self.storage / "uploads" / "data").mkdir(parents=True, exist_ok=True)
        (self.storage / "uploads" / "data" / "inside.txt").write_text("INSIDE")
        evil = self.storage / "uploads" / "evil"
        evil.mkdir(parents=True, exist_ok=True)
        for name, target in (("dir", self.outside), ("file", self.secret),
                             ("etc", Path("/etc")), ("gone", self.outside / "nothing")):
            if not (evil / name).is_symlink():
                (evil / name).symlink_to(target)
        if self.run_id:
            outputs = self.storage / "runs" / str(self.run_id)
            outputs.mkdir(parents=True, exist_ok=True)
            (outputs / "out.txt").write_text("OUTPUT")
            if not (outputs / "evil").is_symlink():
                (outputs / "evil").symlink_to(self.outside)

    def outside_state(self) -> dict[str, str]:
        """What must not change: every file beside storage and up to the server's home (as
        far as a writable path reaches) by digest, the token, /etc/passwd. Not the server's
        own churn in its home (its logs, its DB)."""
        state = {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
                 if path.is_file() else "dir"
                 for path in sorted(self.home.joinpath(*DEPTH[:1]).rglob("*"))
                 if self.storage not in (path, *path.parents)}
        state["token"] = hashlib.sha256((self.home / "token").read_bytes()).hexdigest()
        state["passwd"] = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
        return state

    def payload_outside(self) -> list[str]:
        """Files in the server's home, not in its storage, that hold a written payload."""
        found = []
        for root, dirs, files in os.walk(self.home):
            dirs[:] = [d for d in dirs if Path(root, d) != self.storage]
            found += [str(Path(root, name)) for name in files if _holds_payload(Path(root, name))]
        return found

    def answer(self, what: str, response: httpx.Response, token: str) -> httpx.Response:
        self.requests += 1
        text = response.content.decode("utf-8", "replace")
        if CANARY in text or token in text or "root:x:0:0" in text:
            self.escapes.append(f"read: {what} -> {response.status_code} {text[:120]}")
        if response.status_code >= 500 and '"ray_unavailable"' not in text:
            self.server_errors.append(f"{what} -> {response.status_code} {text[:200]}")
        return response


def _requests(path: str, run_id: int, writable: bool) -> Iterator[tuple[str, str, dict]]:
    """(method, url, httpx arguments) of each route that takes ``path``."""
    # surrogatepass: a lone surrogate goes out as the invalid UTF-8 it would be.
    segment = quote(path, safe="", errors="surrogatepass")
    yield "GET", "/api/resources", {"params": {"path": path}}
    yield "GET", "/api/resources/tree", {"params": {"path": path}}
    yield "GET", "/api/resources/content", {"params": {"path": path}}
    yield "PUT", "/api/links/fz-probe", {"json": {"alias": "fz-probe", "path": path}}
    yield "GET", "/api/resources", {"params": {"path": "fz-probe"}}
    yield "GET", "/api/resources/content", {"params": {"path": "fz-probe/secret.txt"}}
    yield "DELETE", "/api/links/fz-probe", {}
    yield "GET", f"/api/links/{segment}", {}
    yield "POST", "/api/models", {"json": {"name": "fz", "resource": path}}
    yield "POST", "/api/models", {"json": {"name": "fz", "resource": "uploads/data",
                                           "files": [{"path": path, "mount_path": "m"}]}}
    yield "POST", "/api/models", {"json": {"name": "fz", "resource": "uploads/data", "files": [
        {"path": "inside.txt", "mount_path": path}]}}
    yield "GET", f"/api/models/{segment}", {}
    yield "POST", "/api/runs", {"json": {"command": "true",
                                         "mounts": [{"resource": path, "path": "/mnt/x"}]}}
    mounted = {"command": "true", "mounts": [{"resource": path, "path": "/mnt/x"}]}
    yield "POST", "/api/workspaces", {"json": {"name": path, "run": {"command": "true"}}}
    yield "POST", "/api/workspaces", {"json": {"name": "fz", "run": mounted}}
    yield "POST", "/api/workflows", {"json": {"run": mounted}}
    yield "GET", f"/api/workspaces/{segment}", {}
    yield "GET", f"/runs/{run_id}/files/{quote(path, safe='/', errors='surrogatepass')}", {}
    yield "GET", f"/runs/{run_id}/files/{_encoded(path)}", {}
    if writable:
        yield "POST", "/api/resources/uploads/begin", {"params": {"name": path}}
        yield "PUT", "/api/resources/uploads/content", {"params": {"name": path,
                                                                    "path": "x.txt"},
                                                         "content": PAYLOAD}
        yield "POST", "/api/resources/uploads/finish", {"params": {"name": path}}
        yield "PUT", "/api/resources/uploads/content", {"params": {"name": "fz", "path": path},
                                                         "content": PAYLOAD}
        yield "DELETE", "/api/resources", {"params": {"path": path}}
        yield "DELETE", "/api/resources", {"params": {"path": f"uploads/{path}"}}


@pytest.fixture(scope="module")
def ground(fuzz_server: RaylessServer) -> Ground:
    """The planted field, a link to storage and a run (a --local workflow's manager: a run
    with outputs, and no Ray needed) with an output folder."""
    ground = Ground(home=fuzz_server.home, storage=storage_of(fuzz_server))
    ground.plant()
    api = httpx.Client(base_url=fuzz_server.url, timeout=60,
                       headers={"Authorization": f"Bearer {fuzz_server.token}"})
    linked = api.put("/api/links/fz-link", json={"alias": "fz-link", "path": "uploads/data"})
    assert linked.status_code == 201, linked.text
    made = api.post("/api/workflows", json={"run": {"command": "true"}, "local": True})
    assert made.status_code == 201, made.text
    ground.run_id = made.json()["manager_run_id"]
    ground.plant()
    assert api.post("/api/resources/uploads/begin", params={"name": "fz"}).status_code == 200
    return ground


def _console(server: RaylessServer) -> httpx.Client:
    """A browser-like client logged in to the console (its one-time link's cookie)."""
    login = httpx.post(f"{server.url}/api/console/login", timeout=60,
                       headers={"Authorization": f"Bearer {server.token}"}).json()
    browser = httpx.Client(base_url=server.url, timeout=60, headers={"accept": "text/html"})
    assert browser.get(login["login_path"]).status_code == 303
    return browser


def test_no_hostile_path_leaves_storage(fuzz_server: RaylessServer, ground: Ground,
                                        tmp_path: Path) -> None:
    corpus = [str(ground.secret), *hostile_paths()]  # the secret's absolute path, too
    assert len(corpus) >= 200
    paths = sample(corpus, 200) if SHORT else corpus
    before = ground.outside_state()
    token = fuzz_server.token
    api = httpx.Client(base_url=fuzz_server.url, timeout=60,
                       headers={"Authorization": f"Bearer {token}"})
    browser = _console(fuzz_server)
    with api, closing(browser):
        # The routes work (a test that every route refuses would prove nothing).
        inside = api.get("/api/resources/content", params={"path": "fz-link/inside.txt"})
        assert inside.text == "INSIDE"
        output = browser.get(f"/runs/{ground.run_id}/files/out.txt")
        assert output.text == "OUTPUT", output.text
        listed = ground.answer("GET outputs", api.get(f"/api/runs/{ground.run_id}/outputs"), token)
        assert "out.txt" in listed.text, listed.text
        for path in paths:
            ground.plant()
            writable = _writable(path) or path == str(ground.secret)
            linked = True
            for method, url, kwargs in _requests(path, ground.run_id, writable):
                client = browser if url.startswith("/runs/") else api
                what = f"{method} {url} {kwargs.get('params') or kwargs.get('json') or ''}"
                if not linked and "fz-probe" in what:
                    continue  # the link was refused: nothing to read through it
                try:
                    response = client.request(method, url, **kwargs)
                except (httpx.InvalidURL, UnicodeEncodeError):
                    continue  # httpx itself refuses it (a NUL in a URL): nothing was sent
                except httpx.TransportError as exc:  # the server dropped the connection
                    ground.requests += 1
                    ground.server_errors.append(f"{what[:300]} -> {exc!r}")
                    continue
                ground.answer(what[:300], response, token)
                if method == "PUT" and url == "/api/links/fz-probe":
                    linked = response.status_code == 201
            if (after := ground.outside_state()) != before:
                ground.escapes.append(f"write: outside storage changed after {path!r}")
                before = after
    commands = _cli_sample(fuzz_server, ground, tmp_path)
    ground.escapes += [f"write: payload in {p}" for p in ground.payload_outside()]
    for line in [*ground.escapes, *ground.server_errors, *ground.unclear][:30]:
        print(line)
    print(f"\nPath fuzzing: paths={len(paths)}, requests={ground.requests} "
          f"(of which CLI commands: {commands}), escapes={len(ground.escapes)}, "
          f"5xx={len(ground.server_errors)}")
    assert not ground.escapes, ground.escapes[:5]
    assert not ground.server_errors, ground.server_errors[:5]
    assert not ground.unclear, ground.unclear[:5]


def _cli_sample(server: RaylessServer, ground: Ground, tmp_path: Path) -> int:
    """`spell ls`, `spell cp` and `spell run -m` with a sample of the corpus, as a user types
    them: each refused in one line with a non-zero exit, or answered from inside storage; a
    traceback counts as a 5xx."""
    paths = sample([p for p in hostile_paths() if "\x00" not in p], 4 if SHORT else 8)
    # Folders that hold a symlink out of storage, copied whole.
    paths += ["uploads/evil", f"runs/{ground.run_id}"]
    before = ground.outside_state()
    commands = 0
    for index, path in enumerate(paths):
        dest = tmp_path / f"dest{index}"
        dest.mkdir()
        for args in (["ls", path], ["cp", path, str(dest)], ["run", "-m", f"{path}:/mnt/x",
                                                             "true"]):
            done = subprocess.run([*SPELL, *args], env=server.env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=300)
            commands += 1
            said = done.stdout + done.stderr
            if CANARY in said or server.token in said:
                ground.escapes.append(f"read: spell {args[0]} {path!r}: {said[:120]}")
            if "Traceback" in done.stderr:
                ground.server_errors.append(f"spell {args[0]} {path!r}: {done.stderr[-300:]}")
            elif done.returncode != 0 and len(done.stderr.strip().splitlines()) != 1:
                ground.unclear.append(f"spell {args[0]} {path!r}: {done.stderr[-300:]}")
        ground.escapes += [f"read: spell cp {path!r} copied {p}" for p in dest.rglob("*")
                           if p.is_file() and CANARY in p.read_text("latin-1")]
        if (after := ground.outside_state()) != before:
            ground.escapes.append(f"write: outside storage changed after spell ... {path!r}")
            before = after
    ground.requests += commands
    return commands
