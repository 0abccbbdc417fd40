"""The simulated hosts (hosts.py): head and worker with sshd, an outsider without. Marked
``cluster_hosts``; skipped, with the reason, where namespaces cannot be made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster_hosts.hosts import Network, make_network, missing


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = missing()
    for item in items:
        if "cluster_hosts" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.cluster_hosts)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="package")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    made = make_network(tmp_path_factory.mktemp("hosts"),
                        [("head", True), ("worker", True), ("outsider", False)])
    try:
        yield made
    finally:
        made.teardown()
