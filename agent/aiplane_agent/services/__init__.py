"""Work the agent serves beyond tasks: Jupyter servers (mlworker) and uploaded models (gpufarm)."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from aiplane_agent.components import AgentContext


def free_port(host: str) -> int:
    """A port nothing listens on now (the server that takes it binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def call(ctx: AgentContext, base: str | None, path: str, body: Any = None) -> httpx.Response:
    """A POST to the control plane with the agent's one credential (raises ApiError when refused)."""
    return ctx.api._call(base, "POST", path, body)  # noqa: SLF001 - the agent's one client, shared by its components
