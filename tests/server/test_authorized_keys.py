"""The block of users' keys in an authorized_keys file (server/authorized_keys.py), on real
files: foreign lines kept in place, the block replaced whole, mode 0600, a broken block
refused rather than guessed at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spellray.errors import InternalError
from spellray.server.authorized_keys import BEGIN, END, key_line, merged, write

LAUNCHER = "ssh-rsa AAAAB3launcher ray-autoscaler_us-east-1"


def test_a_key_line_allows_the_tunnel_and_names_its_user() -> None:
    line = key_line("ssh-ed25519 AAAAC3x", "alice", "Work laptop", 8300)
    options = line.split(" ", 1)[0]
    assert options.startswith('restrict,port-forwarding,permitopen="127.0.0.1:8300",'
                              'permitlisten="127.0.0.1:1",command="')
    assert line.endswith(" ssh-ed25519 AAAAC3x spellray:alice:Work laptop")


def test_the_block_is_added_after_foreign_lines_and_replaced_in_place() -> None:
    first = merged(f"{LAUNCHER}\n", ["k1"])
    assert first.splitlines() == [LAUNCHER, BEGIN, "k1", END]
    # Someone appended a key after the block: it stays after it, the block changes.
    edited = first + "ssh-ed25519 AAAAother bob@elsewhere\n"
    assert merged(edited, ["k2", "k3"]).splitlines() == [
        LAUNCHER, BEGIN, "k2", "k3", END, "ssh-ed25519 AAAAother bob@elsewhere"]
    assert merged(edited, []).splitlines() == [
        LAUNCHER, BEGIN, END, "ssh-ed25519 AAAAother bob@elsewhere"]
    assert merged("", ["k1"]).splitlines() == [BEGIN, "k1", END]


@pytest.mark.parametrize("text", [f"{BEGIN}\nk1\n", f"k1\n{END}\n",
                                  f"{BEGIN}\n{BEGIN}\n{END}\n"])
def test_a_broken_block_is_refused_not_guessed(text: str) -> None:
    with pytest.raises(InternalError) as caught:
        merged(f"{LAUNCHER}\n{text}", ["k"])
    assert "fix the file by hand" in caught.value.message


def test_write_makes_the_file_0600_in_a_0700_folder_and_keeps_foreign_lines(
        tmp_path: Path) -> None:
    path = tmp_path / "home" / ".ssh" / "authorized_keys"
    write(path, ["k1"])
    assert path.read_text().splitlines() == [BEGIN, "k1", END]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    # A file someone made readable to all, with the launcher's key in it.
    path.write_text(f"{LAUNCHER}\n")
    os.chmod(path, 0o644)
    write(path, ["k2"])
    assert path.read_text().splitlines() == [LAUNCHER, BEGIN, "k2", END]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in path.parent.iterdir()) == ["authorized_keys"]  # no temp


def test_a_file_that_cannot_be_written_is_one_error_and_stays(tmp_path: Path) -> None:
    path = tmp_path / "authorized_keys"
    path.write_text(f"{LAUNCHER}\n{BEGIN}\n")  # broken: never rewritten
    with pytest.raises(InternalError):
        write(path, ["k1"])
    assert path.read_text() == f"{LAUNCHER}\n{BEGIN}\n"
    (tmp_path / "plain").write_text("")
    with pytest.raises(InternalError) as caught:
        write(tmp_path / "plain" / "authorized_keys", ["k1"])  # its folder is a file
    assert "could not write" in caught.value.message
