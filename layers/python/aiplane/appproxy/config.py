"""Coordinator timeouts, configurable per deployment through the environment."""

from __future__ import annotations

import os

DEFAULT_WORKER_LOST_AFTER_S = 30
DEFAULT_CIRCUIT_IDLE_TIMEOUT_S = 3600
DEFAULT_ROUTE_EVICT_AFTER_S = 300


def worker_lost_after_s() -> int:
    """A worker silent (no heartbeat) for longer than this is marked lost."""
    return int(os.environ.get("AIPLANE_APPPROXY_WORKER_LOST_AFTER_S", DEFAULT_WORKER_LOST_AFTER_S))


def circuit_idle_timeout_s() -> int:
    """An interactive circuit idle for longer than this is collected."""
    return int(os.environ.get("AIPLANE_APPPROXY_CIRCUIT_IDLE_TIMEOUT_S", DEFAULT_CIRCUIT_IDLE_TIMEOUT_S))


def allow_unauthorized_conf() -> bool:
    """POST /v2/conf without the manager token, as upstream's `allow_unauthorized_configure_request`
    (Backend.AI 24.03 managers send none). On unless AIPLANE_APPPROXY_ALLOW_UNAUTHORIZED_CONF is false."""
    return os.environ.get("AIPLANE_APPPROXY_ALLOW_UNAUTHORIZED_CONF", "true").strip().lower() not in ("false", "0", "no")


def route_evict_after_s() -> int:
    """A route unhealthy for longer than this leaves its circuit (the manager re-adds it on its next update)."""
    return int(os.environ.get("AIPLANE_APPPROXY_ROUTE_EVICT_AFTER_S", DEFAULT_ROUTE_EVICT_AFTER_S))
