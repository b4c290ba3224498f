"""How the ML worker's records answer over HTTP (and on its streams): workers, reservations,
experiments, jupyter services and audit events. Kept apart from the services that read and write
them. (A task's body stays in `tasks.py`: its own status announcements carry it.)
"""

from __future__ import annotations

import time
from typing import Any

from aiplane.mlworker import scheduling
from aiplane.mlworker.common import without_none
from aiplane.mlworker.models import (
    AuditEventRecord,
    ExperimentRecord,
    JupyterServiceRecord,
    ReservationRecord,
    WorkerRecord,
)
from aiplane.mlworker.reservations import LIVE
from aiplane.mlworker.workers import ACTIVE, OFFLINE, effective_status, free_capacity


def worker_body(worker: WorkerRecord) -> dict[str, Any]:
    status = effective_status(worker)
    free = free_capacity(worker) if status != OFFLINE else scheduling.Capacity(0, 0, 0)
    return {
        "id": worker.worker_id,
        "connected_at": worker.connected_at,
        "last_heartbeat": worker.last_heartbeat,
        "capabilities": without_none(
            {
                "gpu_count": int(worker.gpu_count),
                "gpu_type": worker.gpu_type,
                "cpu_cores": int(worker.cpu_cores),
                "memory_gb": int(worker.memory_gb),
            }
        ),
        "slots": {
            "batch_available": max(0, free.gpu),
            "batch_total": int(worker.gpu_count),
            "service_available": int(worker.service_slots) if status == ACTIVE else 0,
            "service_total": int(worker.service_slots),
        },
        "active_tasks": list(worker.active_tasks or []),
        "status": status,
        "shared": bool(worker.shared),
    }


def reservation_body(reservation: ReservationRecord) -> dict[str, Any]:
    status = reservation.status
    if status in LIVE and reservation.expires_at_epoch <= time.time():
        status = "expired"
    return without_none(
        {
            "id": reservation.reservation_id,
            "user_id": reservation.user_id,
            "gpu_count": int(reservation.gpu_count),
            "gpu_type": reservation.gpu_type,
            "node_count": int(reservation.node_count),
            "expires_at": reservation.expires_at,
            "status": status,
        }
    )


def experiment_body(experiment: ExperimentRecord) -> dict[str, Any]:
    return without_none(
        {
            "id": experiment.experiment_id,
            "name": experiment.name,
            "commit_id": experiment.commit_id,
            "created_at": experiment.created_at,
            "status": experiment.status,
        }
    )


def service_body(service: JupyterServiceRecord) -> dict[str, Any]:
    return without_none(
        {
            "id": service.service_id,
            "name": service.name,
            "status": service.status,
            "url": service.url,
            "token": service.token,
            "created_at": service.created_at,
            "error": service.error,
        }
    )


def worker_service_body(service: JupyterServiceRecord) -> dict[str, Any]:
    """What the worker needs to run it: the client's view plus image and workspace."""
    return without_none({**service_body(service), "image": service.image, "workspace": service.workspace})


def event_body(record: AuditEventRecord) -> dict[str, Any]:
    return without_none(
        {
            "timestamp": record.timestamp,
            "event_type": record.event_type,
            "user_id": record.user_id,
            "resource": record.resource,
            "action": record.action,
            "success": bool(record.success),
            "ip_address": record.ip_address,
            "error": record.error,
            "prev_hash": record.prev_hash,
            "event_hash": record.event_hash,
            "sequence_num": int(record.sequence_num),
            "metadata": record.metadata or {},
        }
    )
