"""Jupyter services: records a GPU worker starts and stops.

Lifecycle: starting (requested) → running (a worker reported its URL) → stopping (stop requested
while running) → stopped; error when the worker could not start it. Stopping a service no worker
has started yet ends it at once.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.update import Action

from aiplane.clock import now_iso
from aiplane.errors import ConflictError, ForbiddenError, NotFoundError
from aiplane.identity.principal import Principal
from aiplane.mlworker import audit
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.common import without_none
from aiplane.mlworker.models import JUPYTER_PARTITION, META, JupyterServiceRecord
from aiplane.mlworker.schemas import JupyterStateReport, StartJupyterRequest

STARTING, RUNNING, STOPPING, STOPPED, ERROR = "starting", "running", "stopping", "stopped", "error"


def start_service(request: StartJupyterRequest, actor: Actor) -> JupyterServiceRecord:
    service_id, moment = str(uuid.uuid4()), now_iso()
    service = JupyterServiceRecord(
        f"JUPYTER#{service_id}", gsi1sk=f"{moment}#{service_id}", service_id=service_id, name=request.name,
        workspace=request.workspace, image=request.image, status=STARTING, token=secrets.token_urlsafe(32),
        user_id=actor.user_id or "", created_at=moment,
    )
    service.save(condition=JupyterServiceRecord.pk.does_not_exist())
    audit.append_event("job_queued", actor, resource=f"jupyter/{service_id}", action="start_jupyter",
                       metadata={"name": request.name, "image": request.image})
    return service


def list_services(principal: Principal) -> list[JupyterServiceRecord]:
    mine = None if principal.is_admin else JupyterServiceRecord.user_id == principal.id
    return list(JupyterServiceRecord.by_created.query(JUPYTER_PARTITION, filter_condition=mine))


def starting_count() -> int:
    """Services waiting for a worker to start them (the service queue)."""
    return len(list(JupyterServiceRecord.by_created.query(
        JUPYTER_PARTITION, filter_condition=JupyterServiceRecord.status == STARTING)))


def get_service(service_id: str) -> JupyterServiceRecord:
    try:
        return JupyterServiceRecord.get(f"JUPYTER#{service_id}", META, consistent_read=True)
    except DoesNotExist:
        raise NotFoundError(f"jupyter service {service_id} not found") from None


def stop_service(service_id: str, principal: Principal, actor: Actor) -> None:
    service = get_service(service_id)
    if not principal.is_admin and service.user_id != principal.id:
        raise ForbiddenError("this service belongs to another user")
    if service.status in (STOPPED, STOPPING):
        return  # stopping is idempotent
    target = STOPPING if service.status == RUNNING else STOPPED
    _set_status(service, target)
    audit.append_event("job_completed", actor, resource=f"jupyter/{service_id}", action="stop_jupyter")


def report_state(service_id: str, report: JupyterStateReport, actor: Actor) -> JupyterServiceRecord:
    """A worker reports the service running (with its URL), stopped, or failed."""
    service = get_service(service_id)
    allowed = {RUNNING: (STARTING,), STOPPED: (STARTING, RUNNING, STOPPING), ERROR: (STARTING, RUNNING, STOPPING)}
    if service.status not in allowed[report.status]:
        raise ConflictError(f"jupyter service {service_id} cannot go from {service.status} to {report.status}")
    if report.status == RUNNING and not report.url:
        raise ConflictError("a running service needs its url")
    _set_status(service, report.status, url=report.url if report.status == RUNNING else service.url)
    event = "job_started" if report.status == RUNNING else "job_completed"
    audit.append_event(event, actor, resource=f"jupyter/{service_id}", action=f"jupyter_{report.status}",
                       success=report.status != ERROR)
    return service


def _set_status(service: JupyterServiceRecord, status: str, **fields: Any) -> None:
    previous = service.status
    actions: list[Action] = [JupyterServiceRecord.status.set(status)]
    actions += [getattr(JupyterServiceRecord, name).set(value) for name, value in fields.items() if value is not None]
    try:
        service.update(actions=actions, condition=JupyterServiceRecord.status == previous)
    except UpdateError as error:  # someone changed it first
        raise ConflictError(f"jupyter service {service.service_id} changed concurrently; try again") from error


def service_body(service: JupyterServiceRecord) -> dict[str, Any]:
    return without_none({
        "id": service.service_id, "name": service.name, "status": service.status, "url": service.url,
        "token": service.token, "created_at": service.created_at,
    })
