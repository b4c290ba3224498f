"""User tokens: HS256 JWTs signed with a key from Secrets Manager.

The secret holds `{"current": "<kid>", "<kid>": "<key>", ...}`: new tokens are signed with the
current key and carry its `kid`; older keys keep verifying until they are removed, which is how a
key is rotated without logging everyone out.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiplane.data.secrets import get_json_secret
from aiplane.errors import InvalidCredentialsError
from aiplane.snapshots import warm_before_snapshot
from aiplane_shared.resources import JWT_SIGNING_SECRET

ALGORITHM = "HS256"
ISSUER = "aiplane"
ACCESS_TOKEN_TTL = timedelta(hours=24)


@warm_before_snapshot
def load_jwt() -> None:
    """PyJWT is imported where a token is signed or read, not at init: most requests carry an API
    key or arrive past the authorizer, and it is about 4 ms of every cold start. Loaded before a
    SnapStart snapshot, so a restored function has it."""
    import jwt  # noqa: F401


def _signing_keys() -> tuple[str, dict[str, str]]:
    secret = get_json_secret(JWT_SIGNING_SECRET.name)
    return secret["current"], {kid: key for kid, key in secret.items() if kid != "current"}


def issue_token(
    subject: str, *, ttl: timedelta = ACCESS_TOKEN_TTL, token_type: str = "access", **claims: Any
) -> tuple[str, datetime]:
    import jwt  # see load_jwt

    kid, keys = _signing_keys()
    now = datetime.now(UTC)
    expires_at = now + ttl
    payload = {
        "sub": subject,
        "iss": ISSUER,
        "iat": now,
        "exp": expires_at,
        "jti": str(uuid.uuid4()),
        "typ": token_type,
        **claims,
    }
    return jwt.encode(payload, keys[kid], algorithm=ALGORITHM, headers={"kid": kid}), expires_at


def verify_token(token: str, *, token_type: str = "access") -> dict[str, Any]:
    """The token's claims; InvalidCredentialsError when it is malformed, forged or expired."""
    import jwt  # see load_jwt

    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise InvalidCredentialsError("token is malformed") from None
    _, keys = _signing_keys()
    key = keys.get(kid or "")
    if key is None:
        raise InvalidCredentialsError("token was signed with an unknown key")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise InvalidCredentialsError("token has expired") from None
    except jwt.PyJWTError:
        raise InvalidCredentialsError("token is not valid") from None
    if claims.get("typ") != token_type:
        raise InvalidCredentialsError("token is not valid")
    return claims
