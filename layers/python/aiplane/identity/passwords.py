"""Passwords: argon2id hashes and the strength rule.

Parameters are OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): about 0.1 s on one core,
where argon2-cffi's default (64 MiB, 3 passes) takes several times that on a small Lambda.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from aiplane.errors import ValidationError
from aiplane.snapshots import warm_before_snapshot

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 8
MAX_LENGTH = 256  # argon2 takes any length; the cap keeps a request from buying minutes of CPU


@warm_before_snapshot
@cache
def _hasher() -> PasswordHasher:
    # Made with the first password checked: argon2 is on every function's auth path, and only
    # logins, registrations and password changes use it.
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


# Verified when the email is unknown, so a miss costs the same time as a wrong password. A literal
# with `_hasher`'s parameters (a test checks they agree): hashing it at import cost every API
# function's cold start about 150 ms.
_DECOY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$F/K3JywVOWIqq2PQuI6ngw$9lF9PsKtmB1mG3TqxiRHy+OdI/zLGKD80IfO99xYqRc"


def check_strength(password: str | None, *, param: str = "password") -> str:
    if not password:
        raise ValidationError("password is required", param=param)
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"password must be at least {MIN_LENGTH} characters", param=param)
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"password must be at most {MAX_LENGTH} characters", param=param)
    if password.isalpha() or password.isdigit() or len(set(password)) < 4:
        raise ValidationError("password is too weak: mix letters with digits or symbols", param=param)
    return password


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash or _DECOY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
