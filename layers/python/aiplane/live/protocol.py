"""What a client's message on `/ws` gets back, per family.

- mlworker (contract 002): `ping` (the text, or `{"type": "ping"}`) → `{"type": "pong"}`;
  anything else → `{"type": "error", "error": ...}`. Updates need no subscription.
- gpufarm (AIServe.Farm's own server): JSON with a `type`: `ping` → `pong`; `subscribe` →
  `subscribed` (from then on the connection gets the status pushes); anything else → `error`
  ("Invalid JSON", "Missing message type", "Unknown message type", as the original says).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiplane_shared.families import GPUFARM, MLWORKER


@dataclass(frozen=True)
class Reply:
    message: dict[str, Any]
    subscribe: bool = False  # the connection asked for the status pushes


def _error(text: str) -> Reply:
    return Reply({"type": "error", "error": text})


def reply_to(family: str, text: str) -> Reply:
    if family == MLWORKER and text.strip().lower() == "ping":
        return Reply({"type": "pong"})
    try:
        message = json.loads(text)
    except ValueError:
        return _error("Invalid JSON")
    kind = message.get("type") if isinstance(message, dict) else None
    if not isinstance(kind, str):
        return _error("Missing message type")
    if kind == "ping":
        return Reply({"type": "pong"})
    if family == GPUFARM and kind == "subscribe":
        return Reply(
            {
                "type": "subscribed",
                "message": "Successfully subscribed to GPU stream",
                "streams": ["instance_status", "contract_status", "model_status"],
            },
            subscribe=True,
        )
    return _error("Unknown message type")
