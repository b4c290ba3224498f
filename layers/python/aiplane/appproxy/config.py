"""Coordinator timeouts and the `/v2/conf` policy, configurable per deployment (aiplane.settings)."""

from __future__ import annotations

from aiplane.settings import get_settings


def worker_lost_after_s() -> int:
    """A worker silent (no heartbeat) for longer than this is marked lost."""
    return get_settings().appproxy_worker_lost_after_s


def circuit_idle_timeout_s() -> int:
    """An interactive circuit idle for longer than this is collected."""
    return get_settings().appproxy_circuit_idle_timeout_s


def allow_unauthorized_conf() -> bool:
    """POST /v2/conf without the manager token, as upstream's `allow_unauthorized_configure_request`
    (Backend.AI 24.03 managers send none). On unless AIPLANE_APPPROXY_ALLOW_UNAUTHORIZED_CONF is false."""
    return get_settings().appproxy_allow_unauthorized_conf


def route_evict_after_s() -> int:
    """A route unhealthy for longer than this leaves its circuit (the manager re-adds it on its next update)."""
    return get_settings().appproxy_route_evict_after_s
