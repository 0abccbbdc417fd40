"""The SDK (spellray.client) against a real spellray server over HTTP that has no Ray cluster
behind it: every resource group's calls, their checks before any request, and the errors the
server's wire codes come back as. Seconds, not minutes: no Ray head is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from spellray.client import Client
from spellray.client._http import ResourceGroup
from spellray.client._run_request import parse_mount
from spellray.client.environment import build_environment
from spellray.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RayUnavailable,
    RunNotFound,
    ServerUnavailable,
    Unauthorized,
    UnsafePath,
)
from tests.helpers import RaylessServer, free_port


@pytest.fixture(scope="module")
def client(rayless_server: RaylessServer) -> Client:
    return Client(rayless_server.url, rayless_server.token)


def folder_with(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_client_composes_one_group_per_resource(client: Client) -> None:
    groups = {"runs", "resources", "links", "metrics", "hyper", "models", "model_servers",
              "cluster", "workflows", "tensorboard", "users", "access_tokens"}
    for name in groups:  # each made on first use, over the client's one session
        group = getattr(client, name)
        assert isinstance(group, ResourceGroup) and group._api is client._api, name
    assert client.info().version
    assert (client.whoami().user, client.whoami().role) == ("admin", "admin")


def test_a_run_without_ray_is_refused_and_recorded_as_not_submitted(
        client: Client, tmp_path: Path) -> None:
    code = folder_with(tmp_path / "code", {"train.py": "print('hi')\n"})
    with pytest.raises(RayUnavailable):
        client.runs.new("python train.py", code_dir=code)
    newest = client.runs.list(limit=1).runs[0]
    assert newest.command == "python train.py"
    assert newest.status.value == "failed" and "not submitted" in (newest.status_reason or "")
    assert client.metrics.list(newest.id) == []


def test_the_same_code_is_uploaded_once(client: Client, rayless_server: RaylessServer,
                                        tmp_path: Path) -> None:
    code = folder_with(tmp_path / "code", {"a.py": "x = 1\n", "pkg/b.py": "y = 2\n"})
    first = client.runs.upload_code(code)
    stored = rayless_server.home / "storage" / "code" / f"{first['sha256']}.zip"
    written = stored.stat().st_mtime_ns
    assert client.runs.upload_code(code) == first
    assert stored.stat().st_mtime_ns == written  # the second upload sent nothing


def test_run_requests_are_checked_before_any_request(client: Client, tmp_path: Path) -> None:
    total = client.runs.list(limit=0).total
    with pytest.raises(InvalidInput, match="names no resource"):
        client.runs.new("true", code_dir=None, mounts=[":model"])
    with pytest.raises(InvalidInput, match="--github-ref needs --github-url"):
        client.runs.new("true", code_dir=None, github_ref="main")
    with pytest.raises(InvalidInput):
        client.runs.new("", code_dir=None)
    assert client.runs.list(limit=0).total == total
    assert parse_mount("runs/7/model").path == "model"
    assert parse_mount("uploads/data:in").path == "in"


def test_unknown_things_are_not_found(client: Client) -> None:
    with pytest.raises(RunNotFound, match="no run 9999"):
        client.runs.get(9999)
    with pytest.raises(NotFound):
        client.model_servers.get("nobody")
    with pytest.raises(NotFound):
        client.models.get("nothing:v1")
    with pytest.raises(NotFound):
        client.links.get("nolink")
    assert client.model_servers.list() == []


def test_uploads_list_copy_back_and_remove(client: Client, tmp_path: Path) -> None:
    data = folder_with(tmp_path / "data", {"x.csv": "1,2\n", "sub/y.csv": "3,4\n"})
    assert client.resources.upload(data, name="sdk-data") == "uploads/sdk-data"
    listed = {e.name for e in client.resources.ls("uploads/sdk-data").entries}
    assert listed == {"x.csv", "sub"}
    out = tmp_path / "out"
    plan = client.resources.plan_copy("uploads/sdk-data", out)
    assert client.resources.copy(plan) == 8
    assert (out / "sdk-data" / "sub" / "y.csv").read_text() == "3,4\n"
    with pytest.raises(Conflict, match="use -f"):
        client.resources.plan_copy("uploads/sdk-data", out)
    client.resources.rm("uploads/sdk-data")
    with pytest.raises(NotFound):
        client.resources.ls("uploads/sdk-data")


def test_paths_that_leave_the_storage_root_are_refused(client: Client) -> None:
    for path, why in (("runs/../../etc", "('..')"), ("../x", "('..')"), ("/etc", "absolute"),
                      ("uploads/%2e%2e/x", "encoded escape"),
                      ("uploads/..%2f..%2fetc", "encoded escape")):
        with pytest.raises(UnsafePath, match=why.replace("(", r"\(").replace(")", r"\)")):
            client.resources.ls(path)


def test_links_and_models_round_trip(client: Client, tmp_path: Path) -> None:
    client.resources.upload(folder_with(tmp_path / "m", {"w.txt": "42"}), name="sdk-model")
    link = client.links.create("sdk-best", "uploads/sdk-model")
    assert link.path == "uploads/sdk-model" and client.links.get("sdk-best") == link
    assert "sdk-best" in {item.alias for item in client.links.list()}
    model = client.models.create("sdkmodel", "uploads/sdk-model")
    assert (model.name, model.version) == ("sdkmodel", "v1")
    assert client.models.create("sdkmodel", "uploads/sdk-model").version == "v2"
    assert client.models.get("sdkmodel:v1").resource == "uploads/sdk-model"
    client.models.delete("sdkmodel:v1")
    with pytest.raises(NotFound):
        client.models.get("sdkmodel:v1")
    client.links.delete("sdk-best")
    with pytest.raises(NotFound):
        client.links.get("sdk-best")


def test_searches_are_checked_before_any_request(client: Client) -> None:
    before = client.hyper.list().searches
    with pytest.raises(InvalidInput):
        client.hyper.start("grid", "python t.py --r :r:", ["r"], code_dir=None)
    with pytest.raises(InvalidInput, match="at least 1"):
        client.hyper.start("random", "python t.py --r :r:", {"r": "0:1"}, num_runs=0,
                           code_dir=None)
    assert client.hyper.list().searches == before


def test_a_wrong_token_and_a_server_that_is_down(rayless_server: RaylessServer) -> None:
    with pytest.raises(Unauthorized):
        Client(rayless_server.url, "not-the-token").runs.list()
    down = Client(f"http://127.0.0.1:{free_port()}", "x")
    with pytest.raises(ServerUnavailable, match="spell server start"):
        down.runs.list()


def test_environments_are_built_from_spells_flags(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# pinned\nsix==1.15.0  # why\n\nattrs\n")
    env = build_environment(pip=["numpy"], pip_req=req, apt=["ffmpeg"], framework="pytorch")
    assert env.pip == ["numpy"] and env.pip_requirements == ["six==1.15.0", "attrs"]
    assert env.apt == ["ffmpeg"] and env.framework == "pytorch"
    with pytest.raises(InvalidInput, match="no such file"):
        build_environment(pip_req=tmp_path / "missing.txt")
    req.write_text("-r other.txt\n")
    with pytest.raises(InvalidInput, match="names another file"):
        build_environment(pip_req=req)


def test_user_and_token_requests_are_checked_before_any_request(client: Client) -> None:
    before = client.access_tokens.list()
    with pytest.raises(InvalidInput, match="bad token name"):
        client.access_tokens.create("no spaces please")
    with pytest.raises(InvalidInput, match="greater than 0"):
        client.access_tokens.create("ok", expires_days=0)
    with pytest.raises(InvalidInput, match="log in with a token"):
        client.users.login(identity="admin")
    with pytest.raises(InvalidInput, match="bad user name"):
        client.users.add("Bad Name")
    assert client.access_tokens.list() == before
