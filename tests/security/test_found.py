"""What the fuzzers found, pinned one by one (each was a 500 before its fix)."""

from __future__ import annotations

import httpx
import pytest

from spellray.errors import InvalidInput
from spellray.schemas import ModelFile
from spellray.server.console.app import console_routes
from spellray.storage.paths import clean_resource_path
from tests.helpers import RaylessServer


@pytest.mark.parametrize("route", ["/api/runs/{n}", "/api/workflows/{n}", "/api/hyper/{n}",
                                   "/api/runs/{n}/metrics"])
def test_a_number_too_big_for_the_db_is_bad_input(fuzz_server: RaylessServer,
                                                  route: str) -> None:
    """An id past the DB's INTEGER was an OverflowError (SQLite) or DataError (Postgres)."""
    response = httpx.get(fuzz_server.url + route.format(n=2**70), timeout=60,
                         headers={"Authorization": f"Bearer {fuzz_server.token}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_input"


def test_a_model_file_reads_back_as_it_was_stored() -> None:
    """'a/.. /' was stored as 'a/.. ', which failed validation when read back: every list of
    models answered 500 from then on."""
    for given in ("uploads/.. /", " out/m.h5 /", "a/.. /b"):
        try:
            stored = ModelFile(path=given, mount_path=given)
        except ValueError:
            continue
        again = ModelFile.model_validate(stored.model_dump())
        assert again == stored


@pytest.mark.parametrize("path", ["a" * 256, "uploads/" + "é" * 128, "x/" * 600])
def test_a_name_or_path_too_long_for_storage_is_bad_input(path: str) -> None:
    """Was an OSError (File name too long) deep in a storage call."""
    with pytest.raises(InvalidInput, match="too long"):
        clean_resource_path(path)


def test_the_console_refuses_numbers_out_of_range(fuzz_server: RaylessServer) -> None:
    """A page's number past the DB's INTEGER, or a log offset out of a file's range
    (negative, or past 64 bits), was a 500 on the console's pages too."""
    auth = {"Authorization": f"Bearer {fuzz_server.token}"}
    made = httpx.post(f"{fuzz_server.url}/api/workflows", headers=auth, timeout=60,
                      json={"run": {"command": "true"}, "local": True})
    run_id = made.json()["manager_run_id"]  # a run with no Ray: a --local workflow's manager
    login = httpx.post(f"{fuzz_server.url}/api/console/login", headers=auth, timeout=60)
    with httpx.Client(base_url=fuzz_server.url, timeout=60,
                      headers={"accept": "text/html"}) as browser:
        assert browser.get(login.json()["login_path"]).status_code == 303
        huge = str(2**70)
        pages = [path.replace("{path:path}", "x") for method, path in console_routes()
                 if method == "GET" and "_id}" in path]
        assert pages
        for page in pages:
            for name in ("{run_id}", "{search_id}", "{workflow_id}"):
                page = page.replace(name, huge)
            answer = browser.get(page)
            assert answer.status_code == 400, (page, answer.status_code)
        for query in ("offset=-3", f"offset={huge}"):
            assert browser.get(f"/runs/{run_id}/log?{query}").status_code == 400, query
        for query in ("before=-5", f"before={huge}"):
            assert browser.get(f"/runs/{run_id}/log/earlier?{query}").status_code == 400, query
