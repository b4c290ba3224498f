"""Small helpers shared by the ML worker modules."""

from __future__ import annotations

from pynamodb.connection import Connection

from aiplane.settings import get_settings


def connection() -> Connection:
    return Connection(region=get_settings().region)


def without_none(body: dict) -> dict:
    """Responses leave out fields that have no value rather than sending null."""
    return {key: value for key, value in body.items() if value is not None}
