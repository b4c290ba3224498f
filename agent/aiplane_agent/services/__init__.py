"""Work the agent serves beyond tasks: Jupyter servers (mlworker) and uploaded models (gpufarm)."""

from __future__ import annotations

import socket


def free_port(host: str) -> int:
    """A port nothing listens on now (the server that takes it binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
