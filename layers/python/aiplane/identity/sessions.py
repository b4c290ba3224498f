"""Sign-up, password login, token refresh and logout, with throttling and an audit event for
every attempt.

A login starts a session (one item): its tokens carry the session id and its generation.
Refresh moves the session to the next generation, so the token it replaced is refused from then
on; presenting a replaced token to refresh again is a reuse (a stolen copy, or a stolen
original) and ends the session. Logout ends it too.

Throttling counts failed logins in fixed windows (`counters`) per account and source together,
per account (a slower ceiling) and per source: an attempt first takes a slot in each, a
successful one gives them back. Taking the slot before checking the password is what keeps
concurrent guesses inside the limit. Limits are per environment (`environments.py`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from pynamodb.exceptions import UpdateError

from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import get_or_none
from aiplane.errors import AiplaneError, InvalidCredentialsError, RateLimitedError
from aiplane.identity import counters
from aiplane.identity.audit import FAILURE, SUCCESS, record_auth_event
from aiplane.identity.models import SessionRecord, UserRecord
from aiplane.identity.principal import USER, Principal
from aiplane.identity.tokens import ACCESS_TOKEN_TTL, issue_token, verify_token
from aiplane.identity.users import authenticate_password, create_user, find_user, normalize_email
from aiplane.settings import current_environment
from aiplane_shared.environments import Throttle

REFRESH_TOKEN_TTL = timedelta(days=30)
SESSION_CLAIM, GENERATION_CLAIM = "sid", "gen"


class Session(NamedTuple):
    user: UserRecord
    token: str
    expires_at: datetime
    refresh_token: str | None = None


def issue_session(user: UserRecord, *, with_refresh: bool = False) -> Session:
    """A new session for the user and its first tokens."""
    session_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    lifetime = REFRESH_TOKEN_TTL if with_refresh else ACCESS_TOKEN_TTL
    SessionRecord(
        f"SESSION#{session_id}",
        "META",
        user_id=user.user_id,
        created_at=now,
        expires_at_epoch=int((now + lifetime).timestamp()),
    ).save(condition=SessionRecord.pk.does_not_exist())
    return _tokens(user, session_id, 0, with_refresh=with_refresh)


def _tokens(user: UserRecord, session_id: str, generation: int, *, with_refresh: bool) -> Session:
    claims: dict[str, Any] = {SESSION_CLAIM: session_id, GENERATION_CLAIM: generation}
    token, expires_at = issue_token(user.user_id, **claims)
    refresh = (
        issue_token(user.user_id, ttl=REFRESH_TOKEN_TTL, token_type="refresh", **claims)[0] if with_refresh else None
    )
    return Session(user=user, token=token, expires_at=expires_at, refresh_token=refresh)


def _claimed(claims: dict[str, Any]) -> tuple[str, int]:
    session_id, generation = claims.get(SESSION_CLAIM), claims.get(GENERATION_CLAIM)
    if not isinstance(session_id, str) or not isinstance(generation, int):
        raise InvalidCredentialsError("token is not valid")  # not issued for a session
    return session_id, generation


def _find(session_id: str) -> SessionRecord | None:
    return get_or_none(SessionRecord, f"SESSION#{session_id}", "META")


def check_session(claims: dict[str, Any]) -> str:
    """The session id of a verified user token; InvalidCredentialsError once the session ended
    or a refresh replaced the token."""
    session_id, generation = _claimed(claims)
    record = _find(session_id)
    if record is None or record.revoked or record.user_id != claims["sub"]:
        raise InvalidCredentialsError("the session has ended")
    if int(record.generation) != generation:
        raise InvalidCredentialsError("the token was replaced by a refresh")
    return session_id


def end_session(session_id: str) -> None:
    try:
        SessionRecord(f"SESSION#{session_id}", "META").update(
            actions=[SessionRecord.revoked.set(True)], condition=SessionRecord.pk.exists()
        )
    except UpdateError as error:
        if not refused_by_condition(error):
            raise


def _rotate(claims: dict[str, Any]) -> tuple[str, int]:
    """Moves the token's session to its next generation, only if the token is the current one."""
    session_id, generation = _claimed(claims)
    try:
        SessionRecord(f"SESSION#{session_id}", "META").update(
            actions=[
                SessionRecord.generation.add(1),
                SessionRecord.expires_at_epoch.set(int((datetime.now(UTC) + ACCESS_TOKEN_TTL).timestamp())),
            ],
            condition=(SessionRecord.generation == generation)
            & (SessionRecord.revoked == False)  # noqa: E712
            & (SessionRecord.user_id == str(claims["sub"])),
        )
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
        record = _find(session_id)
        if record is not None and not record.revoked and int(record.generation) > generation:
            end_session(session_id)  # reuse: whoever holds the newer token loses it too
            raise InvalidCredentialsError("token was already refreshed; the session has been ended") from None
        raise InvalidCredentialsError("the session has ended") from None
    return session_id, generation + 1


def _take_slots(slots: list[tuple[str, Throttle]], message: str) -> None:
    """Takes a slot in every (scope, Throttle), or none of them."""
    taken: list[tuple[str, Throttle]] = []
    try:
        for scope, throttle in slots:
            counters.take(scope, limit=throttle.limit, window_s=throttle.window_s, message=message)
            taken.append((scope, throttle))
    except RateLimitedError:
        for scope, throttle in taken:
            counters.give_back(scope, window_s=throttle.window_s)
        raise


def register(
    email: str | None, password: str | None, friendly_name: str | None, *, family: str, source_ip: str | None
) -> UserRecord:
    """A new user with rights in `family` only (the family it signed up through)."""
    try:
        _take_slots(
            [(f"register-source#{source_ip or 'unknown'}", current_environment().registrations_per_source)],
            "too many sign-ups from this address, try again later",
        )
        user = create_user(email, password, friendly_name, families=[family])
    except AiplaneError as refused:
        record_auth_event(
            "register",
            FAILURE,
            family=family,
            email=(email or "")[:254] or None,
            source_ip=source_ip,
            credential="password",
            reason=refused.message,
        )
        raise
    record_auth_event(
        "register",
        SUCCESS,
        family=family,
        user_id=user.user_id,
        email=user.email,
        source_ip=source_ip,
        credential="password",
    )
    return user


def login(
    email: str | None, password: str | None, *, family: str, source_ip: str | None, with_refresh: bool = False
) -> Session:
    email = normalize_email(email)
    source = source_ip or "unknown"
    environment = current_environment()
    slots = [
        (f"login-account-source#{email}#{source}", environment.login_failures_per_account_and_source),
        (f"login-account#{email}", environment.login_failures_per_account),
        (f"login-source#{source}", environment.login_failures_per_source),
    ]
    try:
        _take_slots(slots, "too many failed logins, try again later")
    except RateLimitedError:
        record_auth_event(
            "login", FAILURE, family=family, email=email, source_ip=source_ip, credential="password", reason="throttled"
        )
        raise
    user = authenticate_password(email, password or "")
    if user is None:
        record_auth_event(
            "login",
            FAILURE,
            family=family,
            email=email,
            source_ip=source_ip,
            credential="password",
            reason="wrong email or password",
        )
        raise InvalidCredentialsError("invalid email or password")
    for scope, throttle in slots:
        counters.give_back(scope, window_s=throttle.window_s)
    record_auth_event(
        "login", SUCCESS, family=family, user_id=user.user_id, email=email, source_ip=source_ip, credential="password"
    )
    return issue_session(user, with_refresh=with_refresh)


def refresh(token: str | None, *, family: str, source_ip: str | None, credential: str = "jwt") -> Session:
    """A new token for the current token of a live session whose user still exists; the
    presented token is refused from then on."""
    try:
        if not token:
            raise InvalidCredentialsError("token is required")
        claims = verify_token(token)
        user = find_user(str(claims["sub"]))
        if user is None:
            raise InvalidCredentialsError("token is not valid")
        session_id, generation = _rotate(claims)
    except InvalidCredentialsError as refused:
        record_auth_event(
            "token_refresh", FAILURE, family=family, source_ip=source_ip, credential=credential, reason=refused.message
        )
        raise
    record_auth_event(
        "token_refresh", SUCCESS, family=family, user_id=user.user_id, source_ip=source_ip, credential=credential
    )
    return _tokens(user, session_id, generation, with_refresh=False)


def logout(
    principal: Principal, *, other_tokens: tuple[str | None, ...] = (), family: str, source_ip: str | None
) -> None:
    """Ends the caller's session and that of any other session token the request carries (the
    UI cookie when the caller authenticated otherwise)."""
    session_ids = {principal.claims.get("sessionId")}
    for token in other_tokens:
        try:
            session_ids.add(_claimed(verify_token(token))[0] if token else None)
        except InvalidCredentialsError:
            pass  # nothing to end
    for session_id in session_ids:
        if session_id is not None:
            end_session(session_id)
    record_auth_event(
        "logout",
        SUCCESS,
        family=family,
        user_id=principal.id if principal.kind == USER else None,
        source_ip=source_ip,
        credential=principal.credential,
    )
