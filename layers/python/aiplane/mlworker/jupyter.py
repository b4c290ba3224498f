"""Jupyter services: records a GPU worker starts and stops.

Lifecycle: starting (requested) → running (the worker it was assigned to reported its URL) →
stopping (stop requested once a worker has it) → stopped; error (with the worker's reason) when
it could not start. Stopping a service no worker was assigned yet ends it at once.

A worker asks for its services (`assign_services`): it gets those assigned to it, plus starting
ones nobody holds (or whose worker went offline) that it may run (its owner's, or anyone's on a
shared worker: `tenancy`) up to its free `service_slots`, each assigned with a conditional write
so two workers never take the same one. Only that worker reports its state.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from aiplane.clock import now_iso
from aiplane.data.models import get_or_404
from aiplane.errors import ConflictError, ForbiddenError
from aiplane.identity.principal import Principal
from aiplane.mlworker import audit, tenancy, workers
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.models import JUPYTER_PARTITION, META, JupyterServiceRecord
from aiplane.mlworker.schemas import JupyterStateReport, StartJupyterRequest

STARTING, RUNNING, STOPPING, STOPPED, ERROR = "starting", "running", "stopping", "stopped", "error"


def start_service(request: StartJupyterRequest, actor: Actor) -> JupyterServiceRecord:
    service_id, moment = str(uuid.uuid4()), now_iso()
    service = JupyterServiceRecord(
        f"JUPYTER#{service_id}",
        gsi1sk=f"{moment}#{service_id}",
        service_id=service_id,
        name=request.name,
        workspace=request.workspace,
        image=request.image,
        status=STARTING,
        token=secrets.token_urlsafe(32),
        user_id=actor.user_id or "",
        created_at=moment,
    )
    service.save(condition=JupyterServiceRecord.pk.does_not_exist())
    audit.append_event(
        "job_queued",
        actor,
        resource=f"jupyter/{service_id}",
        action="start_jupyter",
        metadata={"name": request.name, "image": request.image},
    )
    return service


def list_services(principal: Principal) -> list[JupyterServiceRecord]:
    mine = None if principal.is_admin else JupyterServiceRecord.user_id == principal.id
    return list(JupyterServiceRecord.by_created.query(JUPYTER_PARTITION, filter_condition=mine))


def starting_count() -> int:
    """Services waiting for a worker to start them (the service queue)."""
    return len(
        list(
            JupyterServiceRecord.by_created.query(
                JUPYTER_PARTITION, filter_condition=JupyterServiceRecord.status == STARTING
            )
        )
    )


def get_service(service_id: str) -> JupyterServiceRecord:
    return get_or_404(
        JupyterServiceRecord,
        f"JUPYTER#{service_id}",
        META,
        missing=f"jupyter service {service_id} not found",
        consistent_read=True,
    )


def stop_service(service_id: str, principal: Principal, actor: Actor) -> None:
    service = get_service(service_id)
    if not principal.is_admin and service.user_id != principal.id:
        raise ForbiddenError("this service belongs to another user")
    if service.status in (STOPPED, STOPPING, ERROR):
        return  # stopping is idempotent
    # A worker that holds it (running, or still starting it) stops its server, then reports stopped.
    target = STOPPING if service.status == RUNNING or service.worker_id else STOPPED
    _set_status(service, target)
    audit.append_event("job_completed", actor, resource=f"jupyter/{service_id}", action="stop_jupyter")


HELD_STATUSES = (STARTING, RUNNING, STOPPING)


def assign_services(worker_id: str, actor: Actor) -> list[JupyterServiceRecord]:
    """The services the worker should run (or stop): those it holds, plus starting ones it takes now."""
    worker = workers.get_worker(worker_id)
    live = list(
        JupyterServiceRecord.by_created.query(
            JUPYTER_PARTITION, filter_condition=JupyterServiceRecord.status.is_in(*HELD_STATUSES)
        )
    )
    held = [service for service in live if service.worker_id == worker_id]
    free = int(worker.service_slots) - len(held)
    if worker.drained or workers.effective_status(worker) != workers.ACTIVE:
        free = 0  # draining or silent: keeps what it holds, takes nothing new
    offline: dict[str, bool] = {}
    for service in live:  # oldest first
        if free <= 0:
            break
        if service.status != STARTING or service.worker_id == worker_id:
            continue
        if not tenancy.admits(worker.owner_id, bool(worker.shared), service.user_id):
            continue  # another user's service: only their own workers, or shared ones, start it
        if service.worker_id and not offline.setdefault(service.worker_id, _worker_offline(service.worker_id)):
            continue  # another live worker is starting it
        previous = service.worker_id
        try:
            service.update(
                actions=[JupyterServiceRecord.worker_id.set(worker_id)],
                condition=(JupyterServiceRecord.status == STARTING)
                & (
                    JupyterServiceRecord.worker_id.does_not_exist()
                    if previous is None
                    else JupyterServiceRecord.worker_id == previous
                ),
            )
        except UpdateError:
            continue  # another worker took it, or it was stopped meanwhile
        audit.append_event(
            "job_started",
            actor,
            resource=f"jupyter/{service.service_id}",
            action="assign_jupyter",
            metadata={"worker_id": worker_id, **({"previous_worker_id": previous} if previous else {})},
        )
        held.append(service)
        free -= 1
    return held


def _worker_offline(worker_id: str) -> bool:
    worker = workers.find_worker(worker_id)
    return worker is None or workers.effective_status(worker) == workers.OFFLINE


def report_state(service_id: str, report: JupyterStateReport, actor: Actor) -> JupyterServiceRecord:
    """The worker the service was assigned to reports it running (with its URL), stopped, or failed (with why)."""
    service = get_service(service_id)
    if service.worker_id != report.worker_id:
        raise ConflictError(f"jupyter service {service_id} is not assigned to worker {report.worker_id}")
    allowed = {RUNNING: (STARTING,), STOPPED: (STARTING, RUNNING, STOPPING), ERROR: (STARTING, RUNNING, STOPPING)}
    if service.status not in allowed[report.status]:
        raise ConflictError(f"jupyter service {service_id} cannot go from {service.status} to {report.status}")
    if report.status == RUNNING and not report.url:
        raise ConflictError("a running service needs its url")
    if report.status == ERROR and not report.error:
        raise ConflictError("a failed service needs its error")
    _set_status(
        service,
        report.status,
        url=report.url if report.status == RUNNING else service.url,
        error=report.error if report.status == ERROR else None,
    )
    event = "job_started" if report.status == RUNNING else "job_completed"
    audit.append_event(
        event,
        actor,
        resource=f"jupyter/{service_id}",
        action=f"jupyter_{report.status}",
        success=report.status != ERROR,
        error=report.error,
        metadata={"worker_id": report.worker_id},
    )
    return service


def _set_status(service: JupyterServiceRecord, status: str, **fields: Any) -> None:
    previous = service.status
    actions: list[Action] = [JupyterServiceRecord.status.set(status)]
    actions += [getattr(JupyterServiceRecord, name).set(value) for name, value in fields.items() if value is not None]
    try:
        service.update(actions=actions, condition=JupyterServiceRecord.status == previous)
    except UpdateError as error:  # someone changed it first
        raise ConflictError(f"jupyter service {service.service_id} changed concurrently; try again") from error
