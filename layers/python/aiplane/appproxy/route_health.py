"""Route health checks of inference endpoints (those created with a `health_check`), on a schedule,
as upstream's coordinator runs them (25.13.4 health_checker): a route whose probe fails more than
`max_retries` times in a row is unhealthy and no longer sent to the workers, which balance over the
healthy routes by `traffic_ratio`; one unhealthy for longer than AIPLANE_APPPROXY_ROUTE_EVICT_AFTER_S
leaves the circuit. Kernels are reached under the outbound policy's `kernels` allowlist."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiplane import outbound, outbound_policy
from aiplane.appproxy import events
from aiplane.appproxy.circuits import UNHEALTHY, circuits_of_worker, healthy_routes, serialize_circuit
from aiplane.appproxy.config import route_evict_after_s
from aiplane.appproxy.models import CircuitRecord
from aiplane.appproxy.schemas import HealthCheckConfig
from aiplane.appproxy.workers import list_workers

HEALTHY = "healthy"
UNHEALTHY_SINCE = "unhealthy_since"  # bookkeeping kept with the route, never sent to workers

Probe = Callable[[dict[str, Any], HealthCheckConfig], bool]


def probe_route(route: dict[str, Any], config: HealthCheckConfig) -> bool:
    url = f"http://{route['kernel_host']}:{int(route['kernel_port'])}{config.path}"
    try:
        response = outbound.send(outbound_policy.KERNELS, "GET", url, timeout=config.max_wait_time, check_status=False)
    except (outbound.OutboundError, outbound_policy.OutboundRefused):
        return False
    return response.status_code == config.expected_status_code


def check_routes(now: float | None = None, probe: Probe = probe_route) -> list[str]:
    """One tick over every inference circuit with a health check; returns the ids whose routes changed."""
    now = time.time() if now is None else now
    changed = []
    for worker in list_workers():
        for circuit in circuits_of_worker(worker.worker_id):
            if circuit.app_mode != "inference" or not circuit.health_check:
                continue
            routes = _checked(circuit, HealthCheckConfig.model_validate(circuit.health_check), now, probe)
            if routes is None:
                continue
            before = healthy_routes(circuit)
            circuit.update(actions=[CircuitRecord.route_info.set(routes)])
            if healthy_routes(circuit) != before:
                events.circuit_routes_updated(worker.authority, serialize_circuit(circuit), healthy_routes(circuit))
            changed.append(circuit.circuit_id)
    return changed


def _checked(
    circuit: CircuitRecord, config: HealthCheckConfig, now: float, probe: Probe
) -> list[dict[str, Any]] | None:
    """The routes after this tick's probes (those due after `interval`); None when none was due."""
    due, routes = False, []
    for route in circuit.route_info:
        route = dict(route)
        last = route.get("last_health_check")
        if last is None or now - float(last) >= config.interval:
            due = True
            _record(route, probe(route, config), config, now)
        if route.get(UNHEALTHY_SINCE) is not None and now - float(route[UNHEALTHY_SINCE]) > route_evict_after_s():
            due = True
            continue  # evicted
        routes.append(route)
    return routes if due else None


def _record(route: dict[str, Any], healthy: bool, config: HealthCheckConfig, now: float) -> None:
    route["last_health_check"] = now
    if healthy:
        route.update(health_status=HEALTHY, consecutive_failures=0)
        route[UNHEALTHY_SINCE] = None
        return
    route["consecutive_failures"] = int(route.get("consecutive_failures") or 0) + 1
    if route["consecutive_failures"] > config.max_retries:
        route["health_status"] = UNHEALTHY
        route[UNHEALTHY_SINCE] = route.get(UNHEALTHY_SINCE) or now
