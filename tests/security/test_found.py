"""What the fuzzers found, pinned one by one (each was a 500 before its fix)."""

from __future__ import annotations

import httpx
import pytest

from spellray.errors import InvalidInput
from spellray.schemas import ModelFile
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
