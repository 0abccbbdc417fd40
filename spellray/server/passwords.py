"""Password hashes: argon2id through argon2-cffi (its defaults, RFC 9106's second choice).

``verify`` takes as long for an unknown user as for a wrong password (it checks against a
stand-in hash), so timing tells nobody which names exist; argon2 compares in constant time.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _stand_in() -> str:
    return _hasher.hash("a password nobody has")


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no user or no password: never)."""
    try:
        return _hasher.verify(stored or _stand_in(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
