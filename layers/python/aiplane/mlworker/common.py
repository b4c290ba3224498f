"""Small helpers shared by the ML worker modules."""

from __future__ import annotations

from typing import TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from aiplane.settings import get_settings

Record = TypeVar("Record", bound=Model)


def connection() -> Connection:
    return Connection(region=get_settings().region)


def find(model: type[Record], hash_key: str, range_key: str) -> Record | None:
    """The item, read consistently, or None when there is none."""
    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except DoesNotExist:
        return None


def without_none(body: dict) -> dict:
    """Responses leave out fields that have no value rather than sending null."""
    return {key: value for key, value in body.items() if value is not None}
