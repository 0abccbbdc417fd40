"""The security campaign's fixtures: a real spellray server over HTTP, and how long to fuzz.

The server has no Ray cluster behind it (tests/helpers.py's rayless server): a fuzzer's runs
must never execute random commands on a cluster, and every route still answers; the routes
that need Ray answer 503 ``ray_unavailable``, which the API fuzzer counts apart.

``SPELLRAY_CAMPAIGN=short`` (the quick loop) fuzzes fewer cases; by default, and in .ci/run,
the full campaign runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import RaylessServer, start_rayless_server

SHORT = os.environ.get("SPELLRAY_CAMPAIGN", "full") == "short"


# Storage three folders down in the server's home: a path that escaped it by up to three
# levels (the most the path fuzzer sends to routes that write or delete) stays in the home.
DEPTH = ("a", "b", "c")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaylessServer]:
    """A fresh server per module: one campaign's leftovers never steer another's."""
    home = tmp_path_factory.mktemp("security")
    server = start_rayless_server(home, SPELLRAY_STORAGE_URI=str(home.joinpath(*DEPTH,
                                                                                "storage")))
    yield server
    server.stop()


def storage_of(server: RaylessServer) -> Path:
    return server.home.joinpath(*DEPTH, "storage")
