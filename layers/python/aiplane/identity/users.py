"""Users: one store for every family. The email is unique (a claim item written in the same
transaction as the user), the password is kept only as an argon2id hash."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from aiplane.clock import parse_rfc3339, rfc3339
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import ApiKeyRecord
from aiplane.data.pagination import parse_limit
from aiplane.errors import ConflictError, NotFoundError, ValidationError
from aiplane.identity import passwords, verified_keys
from aiplane.identity.access import delete_entries_of
from aiplane.identity.models import EmailClaimRecord, UserRecord
from aiplane.settings import get_settings
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


def _connection() -> Connection:
    return Connection(region=get_settings().region)


def _email_claim(email: str) -> EmailClaimRecord:
    return EmailClaimRecord(f"EMAIL#{email}", "META")


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
    claim = _email_claim(email)
    claim.user_id = user_id
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.save(claim, condition=EmailClaimRecord.pk.does_not_exist())
            transaction.save(user, condition=UserRecord.pk.does_not_exist())
    except TransactWriteError:
        raise ConflictError("a user with this email already exists", param="email") from None
    return user


def find_user(user_id: str) -> UserRecord | None:
    try:
        return UserRecord.get(f"USER#{user_id}", "META")
    except DoesNotExist:
        return None


def get_user(user_id: str) -> UserRecord:
    user = find_user(user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


def user_by_email(email: str) -> UserRecord | None:
    try:
        claim = EmailClaimRecord.get(f"EMAIL#{email.strip().lower()}", "META")
    except DoesNotExist:
        return None
    return find_user(claim.user_id)


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
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.update(user, actions=actions, condition=UserRecord.pk.exists())
            if new_email != user.email:
                claim = _email_claim(new_email)
                claim.user_id = user_id
                transaction.save(claim, condition=EmailClaimRecord.pk.does_not_exist())
                transaction.delete(_email_claim(user.email))
    except TransactWriteError:
        if find_user(user_id) is None:
            raise NotFoundError(f"user {user_id} not found") from None
        raise ConflictError("a user with this email already exists", param="email") from None
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
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.delete(user, condition=UserRecord.pk.exists())
            transaction.delete(_email_claim(user.email))
    except TransactWriteError:
        raise NotFoundError(f"user {user_id} not found") from None
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


def runtime_view(user: UserRecord) -> dict[str, object]:
    return {
        "id": user.user_id,
        "friendlyName": user.friendly_name,
        "email": user.email,
        "subject": user.subject,
        "createdAt": rfc3339(user.created_at),
        "updatedAt": rfc3339(user.updated_at),
    }


def gpufarm_view(user: UserRecord) -> dict[str, object]:
    return {"id": user.user_id, "email": user.email, "name": user.friendly_name, "created_at": rfc3339(user.created_at)}
