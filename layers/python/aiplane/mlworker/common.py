"""Small helpers shared by the ML worker modules."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.connection import Connection

from aiplane.settings import get_settings


def now_iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def connection() -> Connection:
    return Connection(region=get_settings().region)


def without_none(body: dict) -> dict:
    """Responses leave out fields that have no value rather than sending null."""
    return {key: value for key, value in body.items() if value is not None}
