"""Putting events on an event bus, checked entry by entry (see `aiplane.data.publish`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiplane.data import aws
from aiplane.data.aws import BATCH_LIMIT, PublishRefused
from aiplane.settings import get_settings
from aiplane_shared import resources


def put_events(bus: resources.EventBus, source: str, detail_type: str, details: Sequence[dict[str, Any]]) -> None:
    """Each detail as an event on `bus` (named by the caller: a function's role covers the buses its code names)."""
    bus_name = get_settings().resource(bus.name)
    for start in range(0, len(details), BATCH_LIMIT):
        chunk = details[start : start + BATCH_LIMIT]
        answer = aws.client("events").put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": bus_name,
                }
                for detail in chunk
            ]
        )
        if answer.get("FailedEntryCount"):
            refused = next(entry for entry in answer["Entries"] if entry.get("ErrorCode"))
            raise PublishRefused(
                f"the event bus refused {answer['FailedEntryCount']} of {len(chunk)} events: "
                f"{refused.get('ErrorCode')} {refused.get('ErrorMessage')}"
            )
