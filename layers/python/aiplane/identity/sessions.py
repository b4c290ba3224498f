"""Sign-up, password login and token refresh, with login throttling and an audit event for
every attempt.

Throttling counts failed logins per account and per source address in fixed windows
(`counters`): an attempt first takes a slot in both, a successful one gives them back. Taking the
slot before checking the password is what keeps concurrent guesses inside the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aiplane.errors import AiplaneError, InvalidCredentialsError, RateLimitedError
from aiplane.identity import counters
from aiplane.identity.audit import FAILURE, SUCCESS, record_auth_event
from aiplane.identity.models import UserRecord
from aiplane.identity.tokens import issue_token, verify_token
from aiplane.identity.users import authenticate_password, create_user, find_user, normalize_email

LOGIN_WINDOW_S = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_SOURCE = 30
REFRESH_TOKEN_TTL = timedelta(days=30)


@dataclass(frozen=True)
class Session:
    user: UserRecord
    token: str
    expires_at: datetime
    refresh_token: str | None = None


def issue_session(user: UserRecord, *, with_refresh: bool = False) -> Session:
    token, expires_at = issue_token(user.user_id)
    refresh = issue_token(user.user_id, ttl=REFRESH_TOKEN_TTL, token_type="refresh")[0] if with_refresh else None
    return Session(user=user, token=token, expires_at=expires_at, refresh_token=refresh)


def register(email: str | None, password: str | None, friendly_name: str | None, *, family: str, source_ip: str | None) -> UserRecord:
    try:
        user = create_user(email, password, friendly_name)
    except AiplaneError as refused:
        record_auth_event("register", FAILURE, family=family, email=(email or "")[:254] or None,
                          source_ip=source_ip, credential="password", reason=refused.message)
        raise
    record_auth_event("register", SUCCESS, family=family, user_id=user.user_id, email=user.email,
                      source_ip=source_ip, credential="password")
    return user


def login(email: str | None, password: str | None, *, family: str, source_ip: str | None, with_refresh: bool = False) -> Session:
    email = normalize_email(email)
    scopes = [f"login-account#{email}", f"login-source#{source_ip or 'unknown'}"]
    limits = [MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_SOURCE]
    taken: list[str] = []
    try:
        for scope, limit in zip(scopes, limits, strict=True):
            counters.take(scope, limit=limit, window_s=LOGIN_WINDOW_S, message="too many failed logins, try again later")
            taken.append(scope)
    except RateLimitedError:
        for scope in taken:
            counters.give_back(scope, window_s=LOGIN_WINDOW_S)
        record_auth_event("login", FAILURE, family=family, email=email, source_ip=source_ip,
                          credential="password", reason="throttled")
        raise
    user = authenticate_password(email, password or "")
    if user is None:
        record_auth_event("login", FAILURE, family=family, email=email, source_ip=source_ip,
                          credential="password", reason="wrong email or password")
        raise InvalidCredentialsError("invalid email or password")
    for scope in scopes:
        counters.give_back(scope, window_s=LOGIN_WINDOW_S)
    record_auth_event("login", SUCCESS, family=family, user_id=user.user_id, email=email,
                      source_ip=source_ip, credential="password")
    return issue_session(user, with_refresh=with_refresh)


def refresh(token: str | None, *, family: str, source_ip: str | None, credential: str = "jwt") -> Session:
    """A new token for a valid one whose user still exists."""
    try:
        if not token:
            raise InvalidCredentialsError("token is required")
        user = find_user(str(verify_token(token)["sub"]))
        if user is None:
            raise InvalidCredentialsError("token is not valid")
    except InvalidCredentialsError as refused:
        record_auth_event("token_refresh", FAILURE, family=family, source_ip=source_ip, credential=credential, reason=refused.message)
        raise
    record_auth_event("token_refresh", SUCCESS, family=family, user_id=user.user_id, source_ip=source_ip, credential=credential)
    return issue_session(user)
