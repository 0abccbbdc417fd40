"""OpenSSH public keys for `spell keys`: read one (with the `cryptography` library), its
SHA256 fingerprint as ssh-keygen prints it, a title for it, and a new ed25519 pair.

Shared by the CLI (a bad key is refused before any request) and the server (which checks
again: it is the one that writes keys into the head's authorized_keys). What goes into that
file is rebuilt from checked parts (the key type and its base64 body), never the text given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import socket
from dataclasses import dataclass

TITLE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 ._@+-]{0,98}[A-Za-z0-9._@+-])?$")
MAX_KEY_CHARS = 16_384  # an RSA key of 16384 bits is about 2,800 characters
MIN_RSA_BITS = 2048
# What sshd takes as a user key (and cryptography reads): no DSA, no certificates.
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
             "sk-ecdsa-sha2-nistp256@openssh.com")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_WHAT_TO_DO = "give an OpenSSH public key file (such as ~/.ssh/id_ed25519.pub), or run " \
              "spell keys generate"


class BadKey(ValueError):
    """One line that says what is wrong and what to do."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    body: str  # the base64 blob
    comment: str

    @property
    def line(self) -> str:
        """``TYPE BASE64``: what an authorized_keys line holds, without options or comment."""
        return f"{self.key_type} {self.body}"

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as `ssh-keygen -lf` prints it (unpadded base64 of the blob's hash)."""
        digest = hashlib.sha256(base64.b64decode(self.body)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_public_key(text: str) -> PublicKey:
    """One OpenSSH public key line (``TYPE BASE64 [COMMENT]``), checked by loading it."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    if len(text) > MAX_KEY_CHARS:
        raise BadKey(f"that is not a public key (over {MAX_KEY_CHARS} characters); "
                     f"{_WHAT_TO_DO}")
    if "PRIVATE KEY" in text:
        raise BadKey("that is a private key: never send it; give its .pub file "
                     "(such as ~/.ssh/id_ed25519.pub)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise BadKey(f"a public key is one line, this has {len(lines)}; {_WHAT_TO_DO}")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not _BASE64.match(parts[1]):
        raise BadKey(f"that is not an OpenSSH public key (TYPE BASE64 [COMMENT]); {_WHAT_TO_DO}")
    key_type, body = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise BadKey(f"key type {key_type[:60]!r} is not taken: use ssh-ed25519 (or ssh-rsa "
                     f"of {MIN_RSA_BITS} bits or more, ecdsa-sha2-*); {_WHAT_TO_DO}")
    try:
        loaded = load_ssh_public_key(f"{key_type} {body}".encode())
    except (ValueError, UnsupportedAlgorithm, binascii.Error) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BadKey(f"that is not a valid OpenSSH public key ({why}); {_WHAT_TO_DO}") from None
    if isinstance(loaded, rsa.RSAPublicKey) and loaded.key_size < MIN_RSA_BITS:
        raise BadKey(f"this RSA key has {loaded.key_size} bits, fewer than {MIN_RSA_BITS}: "
                     "make a new one with spell keys generate")
    comment = parts[2].strip() if len(parts) > 2 else ""
    return PublicKey(key_type=key_type, body=body, comment=comment)


def check_title(title: str) -> str:
    if not TITLE.match(title):
        raise BadKey(f"bad title {title[:120]!r}: use letters, digits, spaces, '.', '_', '@', "
                     "'+' or '-' (at most 100), starting with a letter or digit")
    return title


def as_title(text: str) -> str:
    """``text`` (a key's comment, a host name) made a title; empty if nothing is left."""
    title = re.sub(r"[^A-Za-z0-9 ._@+-]+", "-", text)[:100]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", title)


def default_title(key: PublicKey | None = None) -> str:
    """The key's comment (such as alice@laptop), else this computer's name, made a title."""
    return as_title(key.comment if key else "") or as_title(socket.gethostname()) or "key"


def generate_ed25519(comment: str) -> tuple[bytes, str]:
    """A new ed25519 pair: the private key in OpenSSH's format (what ssh -i reads) and the
    public key's line, ``ssh-ed25519 BASE64 COMMENT``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    private_bytes = private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    return private_bytes, f"{public} {comment}".strip()
