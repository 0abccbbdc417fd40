"""--apt on a real Debian machine: real apt-get, real dpkg, as root.

``sl`` is a 60 kB package that nothing depends on; it is purged before and after so the install
path truly runs and the machine is left as found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from spellray.errors import InvalidInput, SpellrayError
from spellray.runner.apt import install

pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or os.geteuid() != 0, reason="needs Debian's apt-get as root"
)
TINY = "sl"


def _purge() -> None:
    subprocess.run(["dpkg", "--purge", TINY], capture_output=True, check=False)


@pytest.fixture
def no_tiny_package() -> Iterator[None]:
    _purge()
    yield
    _purge()


@pytest.mark.timeout(900)
def test_installs_missing_then_skips_present(no_tiny_package: None) -> None:
    lines: list[str] = []
    assert install([TINY], lines.append) == [TINY]
    assert os.access(f"/usr/games/{TINY}", os.X_OK)
    assert f"spellray: apt: installing {TINY}" in lines
    assert lines[-1].startswith(f"spellray: apt: installed {TINY} in ")

    lines.clear()
    assert install([TINY, TINY], lines.append) == []
    assert lines == [f"spellray: apt: {TINY} already installed"] * 2


@pytest.mark.timeout(900)
def test_unknown_package_says_so() -> None:
    lines: list[str] = []
    with pytest.raises(InvalidInput) as info:
        install(["spellray-no-such-pkg"], lines.append)
    assert info.value.message.endswith("E: Unable to locate package spellray-no-such-pkg")
    assert info.value.message.startswith("--apt could not install spellray-no-such-pkg: ")
    assert any("apt: updating the package lists" in line for line in lines)  # retried once


@pytest.mark.parametrize("spec", ["Foo; rm -rf /", "-x", "a", "sl sl", "$(id)", "sl=", "../x", ""])
def test_invalid_names_are_refused_before_apt_runs(spec: str) -> None:
    lines: list[str] = []
    with pytest.raises(InvalidInput, match="is not a Debian package name"):
        install(["coreutils", spec], lines.append)
    assert lines == []  # not even dpkg-query ran for the valid name


def test_a_pinned_version_must_match_to_count_as_installed() -> None:
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "coreutils"],
                             capture_output=True, text=True, check=True).stdout
    lines: list[str] = []
    assert install([f"coreutils={version}"], lines.append, euid=1000) == []
    assert lines == [f"spellray: apt: coreutils={version} already installed"]
    with pytest.raises(SpellrayError, match="needs root"):
        install(["coreutils=0.0-spellray"], lines.append, euid=1000)


def test_non_root_node_is_told_what_to_do() -> None:
    lines: list[str] = []
    with pytest.raises(SpellrayError) as info:
        install(["coreutils", "spellray-no-such-pkg"], lines.append, euid=1000)
    assert info.value.message == (
        "--apt needs root on the node to install spellray-no-such-pkg: install the packages in "
        "the node image or run Ray as root"
    )
    assert lines == ["spellray: apt: coreutils already installed"]


def test_non_root_is_fine_when_everything_is_present() -> None:
    assert install(["coreutils"], lambda _line: None, euid=1000) == []


@pytest.mark.timeout(900)
def test_fresh_node_without_package_lists_updates_once(
        no_tiny_package: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A private, empty lists folder stands in for a fresh image, leaving the machine's alone.
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "apt.conf").write_text(f'Dir::State::Lists "{tmp_path / "lists"}/";\n')
    monkeypatch.setenv("APT_CONFIG", str(tmp_path / "apt.conf"))
    lines: list[str] = []
    assert install([TINY], lines.append) == [TINY]
    assert "spellray: apt: E: Unable to locate package sl" in lines
    assert lines.count("spellray: apt: updating the package lists") == 1
    assert os.access(f"/usr/games/{TINY}", os.X_OK)
    assert not any("% " in line or line.endswith("%") for line in lines)
