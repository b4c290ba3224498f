"""The one credential check. The FastAPI dependency (in-process and on Lambda) and the API
Gateway REQUEST authorizers both call `authenticate`, so a credential means the same everywhere.

Schemes per family (from the contracts):
- runtime: `X-API-Key`, `Authorization: Bearer <jwt|api key>`, or the UI cookie `auth_token`;
- mlworker: `X-API-Key`;
- gpufarm: `Authorization: Bearer <jwt|api key>`, or `X-API-Key` (the original server and its CLI);
- appproxy: `X-BackendAI-Token` (raw, `Bearer <t>` or `BackendAI <t>`), or `Authorization: Bearer <HS256 JWT
  signed with the token>` (Backend.AI's forms), the manager token or the worker token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import NamedTuple

from aiplane.data.secrets import get_string_secret
from aiplane.errors import ForbiddenError, InvalidCredentialsError, UnauthenticatedError
from aiplane.identity import verified_keys
from aiplane.identity.api_keys import DISPLAY_PREFIX_LENGTH, GPU_AGENT_SCOPE, KEY_PREFIX, find_active_key, hash_key
from aiplane.identity.audit import FAILURE, record_auth_event
from aiplane.identity.bootstrap import matches_bootstrap
from aiplane.identity.principal import (
    ADMIN,
    APPPROXY_MANAGER,
    APPPROXY_SHARED,
    APPPROXY_WORKER,
    BOOTSTRAP_ADMIN_ID,
    GPU_AGENT,
    USER,
    Principal,
)
from aiplane.identity.sessions import check_session
from aiplane.identity.tokens import verify_token
from aiplane.identity.users import find_user
from aiplane_shared.families import APPPROXY, FAMILIES, GPUFARM, MLWORKER, RUNTIME
from aiplane_shared.resources import (
    ADMIN_API_KEY_SECRET,
    APPPROXY_MANAGER_TOKEN_SECRET,
    APPPROXY_WORKER_TOKEN_SECRET,
    Secret,
)
from aiplane_shared.routes import AGENT, AUTHENTICATED, GPU_WORKER, MANAGER, PUBLIC, WORKER

AUTH_COOKIE = "auth_token"
FAMILIES_CLAIM = "families"  # the API families a user principal may use, comma-separated
API_KEY_HEADER = "x-api-key"
BACKENDAI_TOKEN_HEADER = "x-backendai-token"


class Credentials(NamedTuple):
    """Whatever credentials a request carries."""

    api_key: str | None = None
    bearer: str | None = None
    cookie_token: str | None = None
    backendai_token: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Credentials:
        lowered = {name.lower(): value for name, value in headers.items()}
        authorization = lowered.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        return cls(
            api_key=lowered.get(API_KEY_HEADER) or None,
            bearer=(value.strip() or None) if scheme.lower() == "bearer" else None,
            cookie_token=_cookie(lowered.get("cookie"), AUTH_COOKIE),
            backendai_token=lowered.get(BACKENDAI_TOKEN_HEADER) or None,
        )


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel and morsel.value else None


def authenticate(family: str, credentials: Credentials, *, source_ip: str | None = None) -> Principal:
    """The caller, or UnauthenticatedError (nothing presented) / InvalidCredentialsError.

    Every refused credential is recorded as an audit event (presenting nothing is not an attempt).
    """
    try:
        return _authenticate(family, credentials)
    except InvalidCredentialsError as refused:
        record_auth_event(
            "authenticate",
            FAILURE,
            family=family,
            source_ip=source_ip,
            credential=_presented_kind(family, credentials),
            key_prefix=_key_prefix(credentials),
            reason=refused.message,
        )
        raise


def _presented_kind(family: str, credentials: Credentials) -> str:
    if family == APPPROXY:
        return "token"
    if credentials.api_key or (credentials.bearer and _looks_like_api_key(credentials.bearer)):
        return "api_key"
    return "jwt" if credentials.bearer else "cookie"


def _key_prefix(credentials: Credentials) -> str | None:
    for value in (credentials.api_key, credentials.bearer):
        if value and value.startswith(KEY_PREFIX):
            return value[:DISPLAY_PREFIX_LENGTH]
    return None


def _authenticate(family: str, credentials: Credentials) -> Principal:
    if family == APPPROXY:
        return _appproxy_principal(credentials)
    if family == MLWORKER:
        presented = [(credentials.api_key, "api_key")]
    elif family == GPUFARM:
        presented = [(credentials.bearer, "bearer"), (credentials.api_key, "api_key")]
    elif family == RUNTIME:
        presented = [
            (credentials.api_key, "api_key"),
            (credentials.bearer, "bearer"),
            (credentials.cookie_token, "cookie"),
        ]
    else:
        raise ValueError(f"unknown family {family!r}")
    for value, source in presented:
        if value:
            return _principal_for(value, source)
    raise UnauthenticatedError("authentication required")


def _principal_for(value: str, source: str) -> Principal:
    if source == "api_key" or (source == "bearer" and _looks_like_api_key(value)):
        return _api_key_principal(value)
    claims = verify_token(value)
    # A deleted user's tokens stop working at once: the user must still exist.
    user = find_user(str(claims["sub"]))
    if user is None:
        raise InvalidCredentialsError("the token's user no longer exists")
    session_id = check_session(claims)  # logged out or replaced by a refresh: refused
    credential = "cookie" if source == "cookie" else "jwt"
    return Principal(
        id=str(claims["sub"]),
        kind=USER,
        credential=credential,
        claims={"sessionId": session_id, FAMILIES_CLAIM: _families(user.families)},
    )


def _looks_like_api_key(value: str) -> bool:
    # A JWT has exactly three dot-separated parts; anything else presented as Bearer is a key.
    return value.startswith(KEY_PREFIX) or value.count(".") != 2


def _api_key_principal(api_key: str) -> Principal:
    if matches_bootstrap(ADMIN_API_KEY_SECRET, api_key):
        return Principal(id=BOOTSTRAP_ADMIN_ID, kind=ADMIN, credential="api_key")
    verified = _verified_key(api_key)
    record = verified.record
    families: Iterable[str] | None = verified.owner.families if verified.owner else FAMILIES  # admin keys: every family
    claims = {"keyId": record.key_id}
    if record.scope == GPU_AGENT_SCOPE:
        # A contract credential opens the agent routes only (require_access), whatever its user's families.
        return Principal(
            id=record.owner_id,
            kind=GPU_AGENT,
            credential="agent_key",
            claims={**claims, "contractId": str(record.contract_id)},
        )
    if record.scope is not None:
        raise InvalidCredentialsError("the API key has an unknown scope")
    claims[FAMILIES_CLAIM] = _families(families)
    if record.rate_limit is not None:
        claims["rateLimit"] = str(int(record.rate_limit))
    return Principal(id=record.owner_id, kind=ADMIN if record.is_admin else USER, credential="api_key", claims=claims)


def _verified_key(api_key: str) -> verified_keys.VerifiedKey:
    key_hash = hash_key(api_key)
    verified = verified_keys.fresh(key_hash)
    if verified is not None:
        return verified
    verified_keys.forget(key_hash)
    record = find_active_key(api_key)
    if record is None:
        raise InvalidCredentialsError("invalid API key")
    owner = None
    if not record.is_admin and record.owner_id != BOOTSTRAP_ADMIN_ID:
        owner = find_user(record.owner_id)
        if owner is None:
            raise InvalidCredentialsError("the API key's user no longer exists")
    verified = verified_keys.VerifiedKey(key_hash=key_hash, record=record, owner=owner)
    verified_keys.remember(verified)
    return verified


def _families(families: Iterable[str] | None) -> str:
    return ",".join(sorted(families or ()))


APPPROXY_ROLES = ((APPPROXY_MANAGER_TOKEN_SECRET, APPPROXY_MANAGER), (APPPROXY_WORKER_TOKEN_SECRET, APPPROXY_WORKER))
BACKENDAI_TOKEN_PREFIXES = ("Bearer ", "BackendAI ")


def _appproxy_principal(credentials: Credentials) -> Principal:
    """The role(s) whose token was presented. X-BackendAI-Token wins over Authorization, as upstream's
    auth_required reads them; a token that is both secrets (one shared secret) holds both roles."""
    if token := credentials.backendai_token:
        for prefix in BACKENDAI_TOKEN_PREFIXES:
            token = token.removeprefix(prefix)
        roles = [kind for secret, kind in APPPROXY_ROLES if matches_bootstrap(secret, token)]
        if not roles:
            raise InvalidCredentialsError("invalid X-BackendAI-Token")
    elif credentials.bearer:
        roles = [kind for secret, kind in APPPROXY_ROLES if _signed_with(credentials.bearer, secret)]
        if not roles:
            raise InvalidCredentialsError("the bearer token is not an HS256 JWT signed with an appproxy token")
    else:
        raise UnauthenticatedError("X-BackendAI-Token header required")
    if len(roles) == 2:
        return Principal(id="manager+worker", kind=APPPROXY_SHARED, credential="token")
    return Principal(id="manager" if roles[0] == APPPROXY_MANAGER else "worker", kind=roles[0], credential="token")


def _signed_with(token: str, secret: Secret) -> bool:
    import jwt  # on first use (aiplane.identity.tokens.load_jwt)

    key = get_string_secret(secret.name)
    if not key:
        return False
    try:
        jwt.decode(token, key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return False
    return True


def require_access(principal: Principal, access: str) -> None:
    """Whether an authenticated principal may use a route of the given access level."""
    if access == PUBLIC:
        return
    # A contract's agent credential is for its agent alone: refused on every other route, and
    # the agent routes take nothing else (no user key can speak for an instance). The GPU worker
    # protocol takes it too (or an admin: require_worker decides in the handler).
    if access == GPU_WORKER:
        return
    if (principal.kind == GPU_AGENT) != (access == AGENT):
        raise ForbiddenError(
            "the GPU agent routes take only a contract's agent credential, which no other route accepts"
        )
    if access in (AUTHENTICATED, AGENT):
        return
    needed = {MANAGER: APPPROXY_MANAGER, WORKER: APPPROXY_WORKER}[access]
    if principal.kind not in (needed, APPPROXY_SHARED):
        raise ForbiddenError(f"this route requires the {access} token")


def require_family(family: str, principal: Principal) -> None:
    """A user has rights only in the families recorded on their account: the one they signed up
    through and those an administrator granted (docs/identity.md). Admins hold every family."""
    if principal.kind != USER:
        return
    if family not in principal.claims.get(FAMILIES_CLAIM, "").split(","):
        raise ForbiddenError(f"this account has no access to the {family} API until an administrator grants it")
