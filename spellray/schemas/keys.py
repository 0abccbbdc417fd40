"""Public SSH keys: `spell keys add | generate | list | rm`. The server keeps the key's type
and body and shows its fingerprint; a private key never reaches it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from spellray.schemas.base import Schema
from spellray.ssh_keys import MAX_KEY_CHARS, check_title


class SshKeyRequest(Schema):
    # The public key's line as in a .pub file: TYPE BASE64 [COMMENT].
    key: str = Field(max_length=MAX_KEY_CHARS)
    # None: the key's comment, else a one-line error asking for one.
    title: str | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else check_title(value)


class SshKey(Schema):
    title: str
    user: str
    key_type: str
    fingerprint: str  # SHA256:... as ssh-keygen -l prints it
    created_at: datetime


class SshKeyAdded(SshKey):
    # Where the server wrote it: the head's authorized_keys, or None when this server
    # manages no such file (SPELLRAY_AUTHORIZED_KEYS_FILE unset, as on a laptop).
    installed_in: str | None = None
