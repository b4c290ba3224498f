"""Workers: registration by authority, heartbeats, lost marking, deregistration, slots."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from aiplane.appproxy.config import worker_lost_after_s
from aiplane.appproxy.models import (
    META,
    SLOT_PREFIX,
    WORKERS_PARTITION,
    CircuitRecord,
    SlotRecord,
    WorkerRecord,
    worker_key,
)
from aiplane.appproxy.schemas import WorkerRequest
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import get_or_404, get_or_none
from aiplane.errors import ConflictError, NotFoundError

# Worker ids derive from the authority, so registering twice can never make two workers.
WORKER_ID_NAMESPACE = uuid.UUID("5b0c3f5e-7d0e-4d55-9c61-2f4f0f1f6a01")


def worker_id_for(authority: str) -> str:
    return str(uuid.uuid5(WORKER_ID_NAMESPACE, authority))


def register_worker(request: WorkerRequest) -> WorkerRecord:
    """Register a worker, or count one more node of an authority already registered (HA) and
    take its settings."""
    now = datetime.now(UTC)
    worker_id = worker_id_for(request.authority)
    settings: dict[str, Any] = {
        "frontend_mode": request.frontend_mode,
        "protocol": request.protocol,
        "hostname": request.hostname,
        "use_tls": request.use_tls,
        "tls_listen": request.tls_listen,
        "tls_advertised": request.tls_advertised,
        "api_port": request.api_port,
        "port_range": request.port_range,
        "wildcard_domain": request.wildcard_domain,
        "wildcard_traffic_port": request.wildcard_traffic_port,
        "filtered_apps_only": request.filtered_apps_only,
        "traefik_last_used_marker_path": request.traefik_last_used_marker_path,
        "accepted_traffics": list(request.accepted_traffics),
        "app_filters": [app_filter.model_dump() for app_filter in request.app_filters],
        "available_slots": request.port_range[1] - request.port_range[0] + 1
        if request.port_range and request.frontend_mode == "port"
        else -1,
    }
    while True:
        record = WorkerRecord(
            worker_key(worker_id),
            META,
            gsi1sk=request.authority,
            worker_id=worker_id,
            authority=request.authority,
            nodes=1,
            occupied_slots=0,
            last_heartbeat_epoch=int(now.timestamp()),
            lost=False,
            created_at=now,
            updated_at=now,
            **settings,
        )
        try:
            record.save(condition=WorkerRecord.pk.does_not_exist())
            return record
        except PutError as error:
            if not refused_by_condition(error):
                raise
        try:
            existing = get_worker(worker_id)
        except NotFoundError:
            continue  # deregistered meanwhile: register afresh
        if existing.occupied_slots and (existing.frontend_mode, existing.port_range) != (
            request.frontend_mode,
            request.port_range,
        ):
            raise ConflictError(
                f"worker {request.authority} holds circuits; its frontend mode and port range cannot change until they are removed",
                param="port_range",
            )
        actions = [
            getattr(WorkerRecord, name).set(value) if value is not None else getattr(WorkerRecord, name).remove()
            for name, value in settings.items()
        ]
        actions += [
            WorkerRecord.nodes.add(1),
            WorkerRecord.last_heartbeat_epoch.set(int(now.timestamp())),
            WorkerRecord.lost.set(False),
            WorkerRecord.updated_at.set(now),
        ]
        try:
            existing.update(actions=actions, condition=WorkerRecord.pk.exists())
            return existing
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
            # Deregistered between the reads and the write: register afresh.


def get_worker(worker_id: str) -> WorkerRecord:
    return get_or_404(WorkerRecord, worker_key(worker_id), META, missing=f"worker {worker_id} not found")


def find_worker(worker_id: str) -> WorkerRecord | None:
    return get_or_none(WorkerRecord, worker_key(worker_id), META)


def find_worker_by_authority(authority: str) -> WorkerRecord:
    for worker in WorkerRecord.by_authority.query(WORKERS_PARTITION, WorkerRecord.gsi1sk == authority):
        return worker
    raise NotFoundError(f"no worker with authority {authority}")


def list_workers() -> list[WorkerRecord]:
    return list(WorkerRecord.by_authority.query(WORKERS_PARTITION))


def heartbeat(worker_id: str) -> WorkerRecord:
    worker = WorkerRecord(worker_key(worker_id), META)
    try:
        worker.update(
            actions=[
                WorkerRecord.last_heartbeat_epoch.set(int(time.time())),
                WorkerRecord.lost.set(False),
                WorkerRecord.updated_at.set(datetime.now(UTC)),
            ],
            condition=WorkerRecord.pk.exists(),
        )
    except UpdateError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"worker {worker_id} not found") from None
        raise
    return worker


def deregister_worker(worker_id: str) -> None:
    """One node leaves; when the last one does, the worker goes with its circuits and slots."""
    worker = get_worker(worker_id)
    if worker.nodes > 1:
        try:
            worker.update(actions=[WorkerRecord.nodes.add(-1)], condition=WorkerRecord.nodes > 1)
            return
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
    with WorkerRecord.batch_write() as batch:
        for circuit in CircuitRecord.by_worker.query(worker_key(worker_id)):
            batch.delete(circuit)
        for slot in SlotRecord.query(worker_key(worker_id), SlotRecord.sk.startswith(SLOT_PREFIX)):
            batch.delete(slot)
        batch.delete(worker)


def mark_lost_workers(now: float | None = None) -> list[str]:
    """Mark every worker silent past the timeout as lost; returns their authorities. A heartbeat
    that lands meanwhile wins (the write is conditional on the heartbeat we saw)."""
    now = time.time() if now is None else now
    deadline = now - worker_lost_after_s()
    marked = []
    for worker in list_workers():
        if worker.lost or worker.last_heartbeat_epoch >= deadline:
            continue
        try:
            worker.update(
                actions=[WorkerRecord.lost.set(True)],
                condition=(WorkerRecord.last_heartbeat_epoch == worker.last_heartbeat_epoch)
                & (WorkerRecord.lost == False),  # noqa: E712
            )
            marked.append(worker.authority)
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
    return marked


def api_endpoint(worker: WorkerRecord) -> str:
    """The worker's own API (its /setup step), the port left out where it is the scheme's default."""
    scheme, default_port = ("https", 443) if worker.use_tls else ("http", 80)
    port = int(worker.api_port)
    return f"{scheme}://{worker.hostname}" + ("" if port == default_port else f":{port}")


def held_slots(worker_id: str) -> list[SlotRecord]:
    return list(SlotRecord.query(worker_key(worker_id), SlotRecord.sk.startswith(SLOT_PREFIX)))


def slots_of(worker: WorkerRecord, *, in_use_only: bool) -> list[dict[str, Any]]:
    """A port worker has a slot per port of its range; a wildcard worker's slots are the
    subdomains in use."""
    held = held_slots(worker.worker_id)
    if worker.frontend_mode == "port":
        by_port = {int(slot.port): slot.circuit_id for slot in held}
        first, last = worker.port_range
        ports = sorted(by_port) if in_use_only else range(first, last + 1)
        return [
            {
                "frontend_mode": "port",
                "in_use": port in by_port,
                "port": port,
                "subdomain": None,
                "circuit_id": by_port.get(port),
            }
            for port in ports
        ]
    return [
        {
            "frontend_mode": "wildcard",
            "in_use": True,
            "port": None,
            "subdomain": slot.subdomain,
            "circuit_id": slot.circuit_id,
        }
        for slot in held
    ]


def list_slots(wsproxy_host: str | None, *, in_use_only: bool) -> list[dict[str, Any]]:
    workers = [find_worker_by_authority(wsproxy_host)] if wsproxy_host else list_workers()
    return [slot for worker in workers for slot in slots_of(worker, in_use_only=in_use_only)]


def serialize_worker(worker: WorkerRecord) -> dict[str, Any]:
    return {
        "authority": worker.authority,
        "frontend_mode": worker.frontend_mode,
        "protocol": worker.protocol,
        "hostname": worker.hostname,
        "use_tls": worker.use_tls,
        "tls_listen": worker.tls_listen,
        "tls_advertised": worker.tls_advertised,
        "api_port": int(worker.api_port),
        "port_range": worker.port_range,
        "wildcard_domain": worker.wildcard_domain,
        "wildcard_traffic_port": int(worker.wildcard_traffic_port)
        if worker.wildcard_traffic_port is not None
        else None,
        "filtered_apps_only": worker.filtered_apps_only,
        "traefik_last_used_marker_path": worker.traefik_last_used_marker_path,
        "accepted_traffics": list(worker.accepted_traffics),
        "app_filters": list(worker.app_filters),
        "id": worker.worker_id,
        "created_at": worker.created_at.isoformat(),
        "updated_at": worker.updated_at.isoformat(),
        "available_slots": int(worker.available_slots),
        "occupied_slots": int(worker.occupied_slots),
        "nodes": int(worker.nodes),
        "slots": slots_of(worker, in_use_only=False),
    }
