"""Publishing live updates: one domain event per status change, for its owner's WebSockets.

A status change is already saved when it is published: a failure to publish is logged and the
change stands (clients re-read the resource after reconnecting).
"""

from __future__ import annotations

from typing import Any

from aiplane.data.event_bus import put_events
from aiplane.observability import logger
from aiplane_shared import resources


def publish(family: str, user_id: str, messages: list[dict[str, Any]], *, subscribers_only: bool = False) -> None:
    """Send `messages` to the WebSockets `user_id` holds on `family` (`subscribers_only`: those
    that sent `subscribe`)."""
    if not user_id:
        return
    detail = {"family": family, "user_id": user_id, "messages": messages, "subscribers_only": subscribers_only}
    try:
        put_events(
            resources.DOMAIN_EVENT_BUS, resources.LIVE_UPDATE_SOURCE, resources.LIVE_UPDATE_DETAIL_TYPE, [detail]
        )
    except Exception:  # the change is saved: a lost update must not fail the request
        logger.exception(
            "live update not published", extra={"family": family, "types": [m.get("type") for m in messages]}
        )
