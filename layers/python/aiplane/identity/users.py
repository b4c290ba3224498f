"""Users: one store for every family. The email is unique (a claim item written in the same
transaction as the user), the password is kept only as an argon2id hash."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from aiplane.clock import parse_rfc3339, rfc3339
from aiplane.data.claims import create_claimed, delete_claimed, move_claim
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import ApiKeyRecord, get_or_none
from aiplane.data.pagination import parse_limit
from aiplane.errors import ConflictError, NotFoundError, ValidationError
from aiplane.identity import passwords, verified_keys
from aiplane.identity.access import delete_entries_of
from aiplane.identity.models import EmailClaimRecord, UserRecord
from aiplane_shared.families import GPUFARM, MLWORKER, RUNTIME

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 254
USER_FAMILIES = (RUNTIME, MLWORKER, GPUFARM)  # appproxy has no user credentials


def normalize_email(email: str | None, *, param: str = "email") -> str:
    email = (email or "").strip().lower()
    if not email:
        raise ValidationError("email is required", param=param)
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise ValidationError("email is not a valid address", param=param)
    return email


def _email_claim(email: str, user_id: str | None = None) -> EmailClaimRecord:
    return EmailClaimRecord(f"EMAIL#{email}", "META", user_id=user_id)


def _email_taken() -> ConflictError:
    return ConflictError("a user with this email already exists", param="email")


def create_user(
    email: str | None, password: str | None, friendly_name: str | None = None, *, families: Iterable[str]
) -> UserRecord:
    """`families`: the API families the user may use from the start (the one they sign up through)."""
    email = normalize_email(email)
    password = passwords.check_strength(password)
    now = datetime.now(UTC)
    user_id = str(uuid.uuid4())
    user = UserRecord(
        f"USER#{user_id}",
        "META",
        gsi1sk=rfc3339(now),
        user_id=user_id,
        subject=str(uuid.uuid4()),
        email=email,
        friendly_name=friendly_name,
        password_hash=passwords.hash_password(password),
        families=set(families) or None,
        created_at=now,
        updated_at=now,
    )
    create_claimed(user, _email_claim(email, user_id), _email_taken)
    return user


def find_user(user_id: str) -> UserRecord | None:
    return get_or_none(UserRecord, f"USER#{user_id}", "META")


def get_user(user_id: str) -> UserRecord:
    user = find_user(user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


def user_by_email(email: str) -> UserRecord | None:
    claim = get_or_none(EmailClaimRecord, f"EMAIL#{email.strip().lower()}", "META")
    return find_user(claim.user_id) if claim is not None else None


def list_users(*, limit: str | int | None = None, cursor: str | None = None) -> list[UserRecord]:
    """Newest first; `cursor` is the createdAt of the last user of the previous page."""
    page_size = parse_limit(limit)
    condition = UserRecord.gsi1sk < rfc3339(parse_rfc3339(cursor, param="cursor")) if cursor else None
    return list(
        UserRecord.by_creation.query("USERS", range_key_condition=condition, scan_index_forward=False, limit=page_size)
    )


def update_user(user_id: str, *, email: str | None = None, friendly_name: str | None = None) -> UserRecord:
    """Only friendlyName and email change; a new email moves the uniqueness claim atomically."""
    user = get_user(user_id)
    now = datetime.now(UTC)
    new_email = normalize_email(email) if email is not None else user.email
    actions: list[Action] = [UserRecord.updated_at.set(now)]
    if friendly_name is not None:
        actions.append(UserRecord.friendly_name.set(friendly_name))
    if new_email != user.email:
        actions.append(UserRecord.email.set(new_email))

    def update(transaction: TransactWrite) -> None:
        transaction.update(user, actions=actions, condition=UserRecord.pk.exists())

    def refused() -> Exception:
        return NotFoundError(f"user {user_id} not found") if find_user(user_id) is None else _email_taken()

    move_claim(_email_claim(user.email), _email_claim(new_email, user_id), refused, also=update)
    return get_user(user_id)


def set_families(user_id: str, families: Iterable[str]) -> UserRecord:
    """Replaces the API families a user may use (an administrator's grant)."""
    granted = set(families)
    unknown = sorted(granted - set(USER_FAMILIES))
    if unknown:
        raise ValidationError(
            f"unknown families {unknown}; expected some of {', '.join(USER_FAMILIES)}", param="families"
        )
    action = UserRecord.families.set(granted) if granted else UserRecord.families.remove()
    try:
        UserRecord(f"USER#{user_id}", "META").update(
            actions=[action, UserRecord.updated_at.set(datetime.now(UTC))], condition=UserRecord.pk.exists()
        )
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
        raise NotFoundError(f"user {user_id} not found") from None
    verified_keys.forget_owner(user_id)
    return get_user(user_id)


def delete_user(user_id: str) -> None:
    """Removes the user (their tokens stop verifying at once: every check looks the user up),
    then their access entries and API keys."""
    user = get_user(user_id)
    delete_claimed(
        user,
        _email_claim(user.email),
        lambda: NotFoundError(f"user {user_id} not found"),
        condition=UserRecord.pk.exists(),
    )
    delete_entries_of(user_id)
    for key in ApiKeyRecord.by_owner.query(f"OWNER#{user_id}"):
        key.update(actions=[ApiKeyRecord.revoked.set(True)])
    verified_keys.forget_owner(user_id)


def authenticate_password(email: str, password: str) -> UserRecord | None:
    """The user when the password matches; None otherwise (same cost whether or not the email exists)."""
    user = user_by_email(email) if email else None
    if not passwords.verify_password(user.password_hash if user else None, password or ""):
        return None
    return user
