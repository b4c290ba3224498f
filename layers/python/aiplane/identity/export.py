"""GDPR-style account export: everything stored about a user, secrets excluded.

Identity data (profile, API key metadata, access entries, auth history) comes from here; other
domains that keep per-user data (gpufarm billing: usage, transactions, credits) add their section
with `register_export_section`, so one export covers the whole store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiplane.clock import rfc3339
from aiplane.identity.access import list_entries
from aiplane.identity.access_entries import file_details
from aiplane.identity.api_keys import keys_of
from aiplane.identity.audit import auth_events_of
from aiplane.identity.models import UserRecord
from aiplane.identity.views import entry_view, gpufarm_view, key_view

# Sections the contract names, empty until their domain registers a provider.
_CONTRACT_SECTIONS: dict[str, Callable[[], Any]] = {
    "usage_quota": dict,
    "gpu_usage": list,
    "transactions": list,
    "credits": list,
}
_PROVIDERS: dict[str, Callable[[str], Any]] = {}


def register_export_section(name: str, provider: Callable[[str], Any]) -> None:
    """`provider(user_id)` returns the section's JSON-ready value."""
    _PROVIDERS[name] = provider


def export_account(user_id: str, user: UserRecord | None) -> dict[str, Any]:
    """The export of `user_id`; `user` is None for a credential without a user record (the
    bootstrap admin), whose export then holds only what is stored under its id."""
    profile = (
        {**gpufarm_view(user), "subject": user.subject, "updated_at": rfc3339(user.updated_at)}
        if user
        else {"id": user_id}
    )
    document: dict[str, Any] = {
        "user": profile,
        "api_keys": [key_view(key) for key in keys_of(user_id)],
        "access": [
            entry_view(entry, file_details(entry.resource)) for entry in list_entries(identity=user_id, limit=1000)
        ],
        "auth_events": [
            {
                "at": rfc3339(event.at),
                "action": event.action,
                "outcome": event.outcome,
                "family": event.family,
                "source_ip": event.source_ip,
                "credential": event.credential,
                "reason": event.reason,
            }
            for event in auth_events_of(user_id)
        ],
    }
    for name, empty in _CONTRACT_SECTIONS.items():
        document[name] = empty()
    for name, provider in _PROVIDERS.items():
        document[name] = provider(user_id)
    document["exported_at"] = rfc3339(datetime.now(UTC))
    return document
