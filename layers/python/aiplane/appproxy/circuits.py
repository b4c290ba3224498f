"""Circuits: placement on a worker slot, lookup, removal, statistics and idle collection.

A circuit is created in one transaction with the slot it holds and the worker's occupied-slot
count: the slot item is written only if absent, so two circuits can never share a port or a
subdomain of a worker however many requests race for it.
"""

from __future__ import annotations

import math
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from aiplane.appproxy import events
from aiplane.appproxy.config import circuit_idle_timeout_s
from aiplane.appproxy.models import (
    META,
    CircuitRecord,
    SlotRecord,
    WorkerRecord,
    circuit_key,
    port_slot_key,
    subdomain_slot_key,
    worker_key,
)
from aiplane.appproxy.workers import find_worker, held_slots, list_workers
from aiplane.data.conditions import ITEM_CONDITION_FAILED, cancellation_codes
from aiplane.data.models import get_or_404, get_or_none
from aiplane.errors import AiplaneError, ConflictError, UnavailableError, ValidationError
from aiplane.observability import logger
from aiplane.settings import get_settings

GENERATED_SUBDOMAIN_ATTEMPTS = 5
# Every field of upstream's RouteInfo; routes stored before these existed get the defaults.
ROUTE_DEFAULTS = {
    "route_id": None,
    "session_name": None,
    "health_status": None,
    "last_health_check": None,
    "consecutive_failures": 0,
}
ROUTE_FIELDS = (
    "route_id",
    "session_id",
    "session_name",
    "kernel_host",
    "kernel_port",
    "protocol",
    "traffic_ratio",
    "health_status",
    "last_health_check",
    "consecutive_failures",
)
UNHEALTHY = "unhealthy"


def upstream_route(route: dict[str, Any]) -> dict[str, Any]:
    """A stored route as upstream's RouteInfo (bookkeeping of the health check left out)."""
    return {name: route.get(name, ROUTE_DEFAULTS.get(name)) for name in ROUTE_FIELDS}


def healthy_routes(circuit: CircuitRecord) -> list[dict[str, Any]]:
    """The routes workers should balance over (by traffic_ratio): all but those found unhealthy."""
    return [upstream_route(route) for route in circuit.route_info if route.get("health_status") != UNHEALTHY]


# Transaction item positions in `_claim`.
SLOT_ITEM, CIRCUIT_ITEM, WORKER_ITEM = 0, 1, 2


class CircuitExistsError(Exception):
    """The circuit id is already taken (an endpoint's circuit created concurrently)."""


@dataclass
class CircuitSpec:
    """What a new circuit needs; the worker, slot and timestamps come from placement."""

    app: str
    protocol: str
    app_mode: str
    route_info: list[dict[str, Any]]
    envs: dict[str, Any] = field(default_factory=dict)
    arguments: str | None = None
    open_to_public: bool = False
    allowed_client_ips: str | None = None
    user_id: str | None = None
    endpoint_id: str | None = None
    preferred_port: int | None = None
    preferred_subdomain: str | None = None
    circuit_id: str | None = None  # fixed for an endpoint's circuit; generated otherwise
    reuse_key: str | None = None  # gsi2 partition an interactive circuit is found again by
    session: dict[str, Any] = field(default_factory=dict)  # SessionConfig, for app filters
    endpoint: dict[str, Any] | None = None  # EndpointConfig, for app filters
    runtime_variant: str | None = None
    health_check: dict[str, Any] | None = None

    @property
    def session_ids(self) -> list[str]:
        return list(dict.fromkeys(route["session_id"] for route in self.route_info))

    def properties(self) -> dict[str, str]:
        """What a worker's app filters match on, named and rendered as upstream renders them:
        `session.<field>` of the session config, `endpoint.<field>` of the endpoint config, `str()` of each value."""
        properties = {f"session.{key}": str(value) for key, value in self.session.items()}
        properties.update({f"endpoint.{key}": str(value) for key, value in (self.endpoint or {}).items()})
        return properties


@cache
def _connection() -> Connection:
    """One connection per process: building its botocore client is the slow part."""
    return Connection(region=get_settings().region)


def _free_slots(worker: WorkerRecord) -> float:
    return math.inf if worker.available_slots < 0 else worker.available_slots - worker.occupied_slots


def _serves(worker: WorkerRecord, spec: CircuitSpec) -> bool:
    return not worker.lost and spec.app_mode in worker.accepted_traffics and worker.protocol == spec.protocol


def _filter_matches(worker: WorkerRecord, properties: dict[str, str]) -> bool:
    return any(properties.get(app_filter["key"]) == app_filter["value"] for app_filter in worker.app_filters)


def _upstream_rank(worker: WorkerRecord) -> float:
    """Upstream's order (pick_worker, 25.13): wildcard workers rank as a port worker with one free
    slot; port workers with fewer free slots come first (they fill up before the next one)."""
    return 1 if worker.frontend_mode == "wildcard" else _free_slots(worker)


def _in_range(worker: WorkerRecord, port: int) -> bool:
    first, last = worker.port_range
    return first <= port <= last


def _matches_preference(worker: WorkerRecord, spec: CircuitSpec) -> bool:
    if spec.preferred_port is not None:
        return worker.frontend_mode == "port"
    if spec.preferred_subdomain is not None:
        return worker.frontend_mode == "wildcard"
    return False


def eligible_workers(spec: CircuitSpec) -> list[WorkerRecord]:
    """Live workers that take this circuit: those whose app filter matches it when any does (else
    those without `filtered_apps_only`); those that can honour a preferred port or subdomain first,
    then in upstream's order."""
    serving = [worker for worker in list_workers() if _serves(worker, spec)]
    properties = spec.properties()
    workers = [worker for worker in serving if worker.filtered_apps_only and _filter_matches(worker, properties)]
    if not workers:
        workers = [worker for worker in serving if not worker.filtered_apps_only]
    if spec.preferred_port is not None:
        port_workers = [worker for worker in workers if worker.frontend_mode == "port"]
        if port_workers and not any(_in_range(worker, spec.preferred_port) for worker in port_workers):
            raise ValidationError(
                f"port {spec.preferred_port} is outside the port range of every eligible worker", param="port"
            )
        # A preferred port is honoured or refused (409), never silently replaced by another slot.
        workers = [worker for worker in port_workers if _in_range(worker, spec.preferred_port)] or workers
    if not workers:
        raise UnavailableError(
            f"no live worker accepts {spec.app_mode} {spec.protocol} circuits", code="NO_AVAILABLE_WORKER"
        )
    workers = [worker for worker in workers if _free_slots(worker) > 0]
    return sorted(workers, key=lambda worker: (not _matches_preference(worker, spec), _upstream_rank(worker)))


def place_circuit(spec: CircuitSpec) -> tuple[CircuitRecord, WorkerRecord]:
    for worker in eligible_workers(spec):
        circuit = _place_on(worker, spec)
        if circuit is not None:
            events.circuits_created(worker.authority, [serialize_circuit(circuit)])
            return circuit, worker
    if spec.preferred_port is not None:
        raise ConflictError(f"port {spec.preferred_port} is already taken", param="port")
    raise UnavailableError("every eligible worker's slots are taken", code="NO_FREE_SLOT")


def _place_on(worker: WorkerRecord, spec: CircuitSpec) -> CircuitRecord | None:
    """Claim a free slot of the worker; None when it has none left (or left the pool)."""
    if worker.frontend_mode == "port":
        first, last = worker.port_range
        for _ in range(last - first + 1):
            held = {int(slot.port) for slot in held_slots(worker.worker_id)}
            free = [port for port in range(first, last + 1) if port not in held]
            if not free:
                return None
            # Racing requests spread over the free ports instead of all trying the lowest.
            # OS entropy: environments restored from one SnapStart snapshot share the `random` seed.
            if spec.preferred_port is not None and spec.preferred_port not in free:
                return None
            port = spec.preferred_port or random.SystemRandom().choice(free)
            outcome = _claim(worker, spec, port, None)
            if outcome != SLOT_ITEM:
                return outcome if isinstance(outcome, CircuitRecord) else None
        return None
    held_names = {slot.subdomain for slot in held_slots(worker.worker_id)}
    names = (
        [spec.preferred_subdomain] if spec.preferred_subdomain and spec.preferred_subdomain not in held_names else []
    )
    names += [_generated_subdomain(spec.app) for _ in range(GENERATED_SUBDOMAIN_ATTEMPTS)]
    for name in names:
        outcome = _claim(worker, spec, None, name)
        if outcome != SLOT_ITEM:
            return outcome if isinstance(outcome, CircuitRecord) else None
    return None


def _generated_subdomain(app: str) -> str:
    prefix = "".join(ch for ch in app.lower() if ch.isalnum())[:20] or "app"
    return f"{prefix}-{secrets.token_hex(4)}"


def _claim(worker: WorkerRecord, spec: CircuitSpec, port: int | None, subdomain: str | None) -> CircuitRecord | int:
    """Write slot, circuit and count together; the failed item's position when refused."""
    now = datetime.now(UTC)
    circuit_id = spec.circuit_id or str(uuid.uuid4())
    slot_sort_key = port_slot_key(port) if port is not None else subdomain_slot_key(subdomain or "")
    slot = SlotRecord(
        worker_key(worker.worker_id),
        slot_sort_key,
        worker_id=worker.worker_id,
        frontend_mode=worker.frontend_mode,
        port=port,
        subdomain=subdomain,
        circuit_id=circuit_id,
    )
    circuit = CircuitRecord(
        circuit_key(circuit_id),
        META,
        gsi1pk=worker_key(worker.worker_id),
        gsi1sk=f"{now.isoformat()}#{circuit_id}",
        gsi2pk=spec.reuse_key,
        gsi2sk=now.isoformat() if spec.reuse_key else None,
        circuit_id=circuit_id,
        app=spec.app,
        protocol=spec.protocol,
        worker_id=worker.worker_id,
        app_mode=spec.app_mode,
        frontend_mode=worker.frontend_mode,
        envs=spec.envs,
        arguments=spec.arguments,
        open_to_public=spec.open_to_public,
        allowed_client_ips=spec.allowed_client_ips,
        port=port,
        subdomain=subdomain,
        user_id=spec.user_id,
        endpoint_id=spec.endpoint_id,
        runtime_variant=spec.runtime_variant,
        health_check=spec.health_check,
        route_info=spec.route_info,
        session_ids=spec.session_ids,
        requests=0,
        created_at=now,
        updated_at=now,
    )
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.save(slot, condition=SlotRecord.pk.does_not_exist())
            transaction.save(circuit, condition=CircuitRecord.pk.does_not_exist())
            transaction.update(
                WorkerRecord(worker_key(worker.worker_id), META),
                actions=[WorkerRecord.occupied_slots.add(1)],
                condition=WorkerRecord.pk.exists() & (WorkerRecord.lost == False),  # noqa: E712
            )
    except TransactWriteError as error:
        failed = [index for index, code in enumerate(cancellation_codes(error)) if code == ITEM_CONDITION_FAILED]
        if not failed:
            raise
        if CIRCUIT_ITEM in failed:
            raise CircuitExistsError(circuit_id) from None
        return WORKER_ITEM if WORKER_ITEM in failed else SLOT_ITEM
    return circuit


def get_circuit(circuit_id: str) -> CircuitRecord:
    return get_or_404(CircuitRecord, circuit_key(circuit_id), META, missing=f"circuit {circuit_id} not found")


def find_circuit(circuit_id: str) -> CircuitRecord | None:
    return get_or_none(CircuitRecord, circuit_key(circuit_id), META)


def circuits_of_worker(worker_id: str) -> list[CircuitRecord]:
    return list(CircuitRecord.by_worker.query(worker_key(worker_id)))


def reusable_circuit(spec: CircuitSpec) -> CircuitRecord | None:
    """The newest circuit for the same session and app, opened by the same user with the same
    exposure (`open_to_public`, `allowed_client_ips`), on a worker that is still live."""
    for circuit in CircuitRecord.by_session_app.query(spec.reuse_key, scan_index_forward=False):
        if (circuit.user_id, circuit.open_to_public, circuit.allowed_client_ips) != (
            spec.user_id,
            spec.open_to_public,
            spec.allowed_client_ips,
        ):
            continue
        worker = get_or_none(WorkerRecord, worker_key(circuit.worker_id), META)
        if worker is not None and not worker.lost:
            return circuit
    return None


def touch(circuit: CircuitRecord) -> None:
    circuit.update(actions=[CircuitRecord.last_access.set(int(time.time()))])


def remove_circuit(circuit: CircuitRecord) -> bool:
    """Delete the circuit, free its slot and count, and tell its worker; False when it was already gone."""
    removed = _delete_circuit(circuit)
    if removed:
        worker = find_worker(circuit.worker_id)
        if worker is not None:
            events.circuits_removed(worker.authority, [serialize_circuit(circuit)])
    return removed


def _delete_circuit(circuit: CircuitRecord) -> bool:
    slot_sort_key = (
        port_slot_key(int(circuit.port)) if circuit.port is not None else subdomain_slot_key(circuit.subdomain or "")
    )
    slot = SlotRecord(worker_key(circuit.worker_id), slot_sort_key)
    for with_worker in (True, False):
        try:
            with TransactWrite(connection=_connection()) as transaction:
                transaction.delete(circuit, condition=CircuitRecord.pk.exists())
                transaction.delete(slot)
                if with_worker:
                    transaction.update(
                        WorkerRecord(worker_key(circuit.worker_id), META),
                        actions=[WorkerRecord.occupied_slots.add(-1)],
                        condition=WorkerRecord.pk.exists(),
                    )
            return True
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if codes[:1] == [ITEM_CONDITION_FAILED]:
                return False
            if codes[2:3] != [ITEM_CONDITION_FAILED]:
                raise
            # The worker was deregistered: only the circuit and its slot remain to delete.
    return True


def spec_of(circuit: CircuitRecord) -> CircuitSpec:
    """What placed the circuit, to place it again (same id) elsewhere."""
    return CircuitSpec(
        app=circuit.app,
        protocol=circuit.protocol,
        app_mode=circuit.app_mode,
        route_info=list(circuit.route_info),
        envs=dict(circuit.envs),
        arguments=circuit.arguments,
        open_to_public=circuit.open_to_public,
        allowed_client_ips=circuit.allowed_client_ips,
        user_id=circuit.user_id,
        endpoint_id=circuit.endpoint_id,
        circuit_id=circuit.circuit_id,
        reuse_key=circuit.gsi2pk,
        runtime_variant=circuit.runtime_variant,
        health_check=circuit.health_check,
    )


def relocate_circuits_of_lost_workers() -> list[str]:
    """Move every circuit of a lost worker to a live worker that takes it (a new slot, so a new URL,
    which its endpoint then answers); circuits no live worker takes stay where they are."""
    moved = []
    for worker in list_workers():
        if not worker.lost:
            continue
        for circuit in circuits_of_worker(worker.worker_id):
            spec = spec_of(circuit)
            try:
                eligible_workers(spec)
            except AiplaneError:
                continue
            if not remove_circuit(circuit):
                continue
            try:
                place_circuit(spec)
                moved.append(circuit.circuit_id)
            except AiplaneError as refused:
                logger.warning(
                    "a lost worker's circuit found no slot",
                    extra={"circuit_id": circuit.circuit_id, "error": refused.message},
                )
    return moved


def remove_circuits(circuit_ids: list[str]) -> None:
    """All or nothing: every id must name a circuit before any is removed."""
    circuits = [get_circuit(circuit_id) for circuit_id in dict.fromkeys(circuit_ids)]
    for circuit in circuits:
        remove_circuit(circuit)


def circuit_url(worker: WorkerRecord, circuit: CircuitRecord) -> str:
    """Where the circuit is reached on its worker."""
    scheme = "https" if worker.use_tls else "http"
    if circuit.frontend_mode == "port":
        return f"{scheme}://{worker.hostname}:{int(circuit.port)}"
    domain = worker.wildcard_domain or ""
    host = f"{circuit.subdomain}{domain if domain.startswith('.') else '.' + domain}"
    # The wildcard frontend's own port (wildcard_traffic_port), left out where it is the scheme's default.
    port = int(worker.wildcard_traffic_port) if worker.wildcard_traffic_port is not None else None
    return f"{scheme}://{host}" if port in (None, 443 if worker.use_tls else 80) else f"{scheme}://{host}:{port}"


Traffic = tuple[int | None, float | None]  # (requests, last access) a worker reported


def _last_activity(circuit: CircuitRecord, reported: Traffic | None) -> float:
    """The later of the coordinator's own stamp (its creation until then) and the worker's report."""
    own = float(circuit.last_access) if circuit.last_access is not None else circuit.created_at.timestamp()
    return max(own, reported[1]) if reported and reported[1] is not None else own


def _idle_seconds(circuit: CircuitRecord, now: float, reported: Traffic | None = None) -> float:
    return now - _last_activity(circuit, reported)


def serialize_circuit(circuit: CircuitRecord) -> dict[str, Any]:
    return {
        "id": circuit.circuit_id,
        "app": circuit.app,
        "protocol": circuit.protocol,
        "worker": circuit.worker_id,
        "app_mode": circuit.app_mode,
        "frontend_mode": circuit.frontend_mode,
        "envs": circuit.envs,
        "arguments": circuit.arguments,
        "open_to_public": circuit.open_to_public,
        "allowed_client_ips": circuit.allowed_client_ips,
        "port": int(circuit.port) if circuit.port is not None else None,
        "subdomain": circuit.subdomain,
        "user_id": circuit.user_id,
        "endpoint_id": circuit.endpoint_id,
        "runtime_variant": circuit.runtime_variant,
        "route_info": [upstream_route(route) for route in circuit.route_info],
        "session_ids": list(circuit.session_ids),
        "created_at": circuit.created_at.isoformat(),
        "updated_at": circuit.updated_at.isoformat(),
    }


def circuit_statistics(circuit: CircuitRecord, now: float | None = None) -> dict[str, Any]:
    """The circuit with its traffic: the worker's counters where it reported them."""
    now = time.time() if now is None else now
    reported = events.traffic([circuit.circuit_id]).get(circuit.circuit_id)
    ttl = None
    if circuit.app_mode == "interactive":
        ttl = max(0, int(circuit_idle_timeout_s() - _idle_seconds(circuit, now, reported)))
    requests = max(int(circuit.requests), (reported[0] if reported else None) or 0)
    has_access = circuit.last_access is not None or bool(reported and reported[1] is not None)
    return {
        **serialize_circuit(circuit),
        "requests": requests,
        "last_access": int(_last_activity(circuit, reported)) if has_access else None,
        "ttl": ttl,
    }


def collect_idle_circuits(now: float | None = None) -> list[str]:
    """Remove interactive circuits idle past the timeout, freeing their slots; returns their ids.
    Traffic the workers report (their last-access stamps in Redis) keeps a circuit alive."""
    now = time.time() if now is None else now
    timeout = circuit_idle_timeout_s()
    collected = []
    for worker in list_workers():
        interactive = [circuit for circuit in circuits_of_worker(worker.worker_id) if circuit.app_mode == "interactive"]
        reported = events.traffic([circuit.circuit_id for circuit in interactive])
        for circuit in interactive:
            if _idle_seconds(circuit, now, reported.get(circuit.circuit_id)) > timeout and remove_circuit(circuit):
                collected.append(circuit.circuit_id)
    return collected
