"""Work the agent serves beyond tasks: Jupyter servers (mlworker) and uploaded models (gpufarm)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import httpx

from aiplane_agent.api import ApiError
from aiplane_agent.log import log


def free_port(host: str) -> int:
    """A port nothing listens on now (the server that takes it binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class AssignmentPoll:
    """Asks the control plane, at most every `period_s`, for the work it assigns this agent."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.next_poll = 0.0

    def assigned(self, period_s: float, ask: Callable[[], httpx.Response]) -> list[dict[str, Any]] | None:
        """The assigned items, or None when it is not time yet, or the API refused (a 404 until this
        agent has registered) or could not be reached (both logged)."""
        if time.monotonic() < self.next_poll:
            return None
        self.next_poll = time.monotonic() + period_s
        try:
            return ask().json()[self.what]
        except ApiError as error:
            log(f"{self.what} refused", status=error.status_code, error=error.body[:300])
        except httpx.HTTPError as error:
            log(f"{self.what}: the control plane is unreachable", error=type(error).__name__)
        return None
