"""spellray/ssh_keys.py: real keys made by ssh-keygen (OpenSSH's own), their fingerprints as
ssh-keygen prints them, and the keys and texts that are refused, each with one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from spellray.ssh_keys import (
    BadKey,
    as_title,
    check_title,
    default_title,
    generate_ed25519,
    parse_public_key,
)


def keygen(folder: Path, name: str, *args: str) -> Path:
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-f", str(path), *args], check=True)
    return path


def ssh_keygen_fingerprint(path: Path) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(path)], check=True, capture_output=True,
                          text=True).stdout.split()[1]


@pytest.mark.parametrize("args", [("-t", "ed25519"), ("-t", "rsa", "-b", "3072"),
                                  ("-t", "ecdsa", "-b", "384")])
def test_keys_ssh_keygen_makes_are_read_with_its_fingerprint(tmp_path: Path,
                                                             args: tuple[str, ...]) -> None:
    private = keygen(tmp_path, "id", *args, "-C", "alice@laptop")
    pub = Path(f"{private}.pub")
    key = parse_public_key(pub.read_text())
    assert key.fingerprint == ssh_keygen_fingerprint(pub)
    assert key.comment == "alice@laptop" and default_title(key) == "alice@laptop"
    assert pub.read_text().startswith(key.line + " ")


def test_a_generated_pair_is_one_openssh_reads(tmp_path: Path) -> None:
    private, public = generate_ed25519("my laptop")
    path = tmp_path / "id"
    path.write_bytes(private)
    path.chmod(0o600)
    # ssh-keygen -y derives the public key from the private one: the same key.
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], check=True,
                             capture_output=True, text=True).stdout.split()[:2]
    assert " ".join(derived) == parse_public_key(public).line
    assert public.endswith(" my laptop")


def test_bad_keys_are_refused_with_one_line(tmp_path: Path) -> None:
    private = keygen(tmp_path, "id", "-t", "ed25519")
    short_rsa = keygen(tmp_path, "rsa", "-t", "rsa", "-b", "1024")
    good = Path(f"{private}.pub").read_text().split()
    cases = {
        private.read_text(): "private key",
        Path(f"{short_rsa}.pub").read_text(): "fewer than 2048",
        "": "one line",
        f"{good[0]} {good[1]}\n{good[0]} {good[1]}": "one line, this has 2",
        "ssh-ed25519": "not an OpenSSH public key",
        f"ssh-dss {good[1]}": "ssh-dss",
        f"ssh-ed25519-cert-v01@openssh.com {good[1]}": "is not taken",
        f"ssh-rsa {good[1]}": "not a valid OpenSSH public key",  # the blob says ed25519
        f"ssh-ed25519 {good[1][:-4]}": "not a valid OpenSSH public key",
        f'restrict,command="sh" {good[0]} {good[1]}': "not an OpenSSH public key",
        f"ssh-ed25519 {good[1]}\"x": "not an OpenSSH public key",
        "x" * 20_000: "over 16384 characters",
    }
    for text, words in cases.items():
        with pytest.raises(BadKey) as caught:
            parse_public_key(text)
        message = str(caught.value)
        assert words in message and "\n" not in message, (text[:60], message)


def test_titles() -> None:
    assert check_title("Work laptop") == "Work laptop"
    for bad in ("", " lead", "trail ", "a:b", "a\nb", "é", "x" * 101, "a/b"):
        with pytest.raises(BadKey):
            check_title(bad)
    assert as_title("alice@my laptop (home)") == "alice@my laptop -home"
    assert as_title("::") == ""
    assert check_title(default_title(None))  # this computer's name, made a title
