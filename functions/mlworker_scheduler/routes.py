"""mlworker scheduler routes.

Contract rows of this group:
- DELETE /v1/scheduler/workers/{workerId}
- GET /v1/scheduler/jobs/{jobId}/stream
- GET /v1/scheduler/reservations
- GET /v1/scheduler/status
- GET /v1/scheduler/status/stream
- GET /v1/scheduler/workers
- GET /v1/scheduler/workers/{workerId}
- PATCH /v1/scheduler/jobs/{jobId}/priority
- POST /v1/scheduler/reservations

GPU worker protocol (beyond the contract, see EXTRA_ROUTES): an admin API key, or a GPU contract's
agent credential for its own worker (`require_worker`):
- POST /v1/scheduler/workers (register)
- POST /v1/scheduler/workers/{workerId}/heartbeat
- POST /v1/scheduler/workers/{workerId}/lease
- POST /v1/scheduler/jobs/{jobId}/state

Beyond the contract for everyone: DELETE /v1/scheduler/reservations/{reservationId} (release early).
"""

from typing import Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from aiplane.api.auth import current_principal
from aiplane.mlworker import cluster, reservations, scheduler, task_io, tasks, workers
from aiplane.mlworker.requests import actor_of, require_admin, require_worker
from aiplane.mlworker.schemas import (
    CreateReservationRequest,
    JobStateReport,
    PriorityRequest,
    RegisterWorkerRequest,
    WorkerHeartbeat,
)

router = APIRouter()
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("/v1/scheduler/status")
def scheduler_status() -> dict[str, Any]:
    return scheduler.status()


@router.get("/v1/scheduler/status/stream")
def scheduler_status_stream(request: Request, last_event_id: str | None = Header(None)) -> StreamingResponse:
    events = scheduler.status_events(scheduler.parse_last_event_id(last_event_id), current_principal(request))
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/v1/scheduler/workers")
def list_workers() -> list[dict[str, Any]]:
    return [workers.worker_body(worker) for worker in workers.list_workers()]


@router.get("/v1/scheduler/workers/{workerId}")
def get_worker(workerId: str) -> dict[str, Any]:
    return workers.worker_body(workers.get_worker(workerId))


@router.delete("/v1/scheduler/workers/{workerId}", status_code=204)
def drain_worker(workerId: str, request: Request) -> Response:
    require_admin(request)
    workers.drain_worker(workerId, actor_of(request))
    return Response(status_code=204)


@router.get("/v1/scheduler/reservations")
def list_reservations(request: Request) -> list[dict[str, Any]]:
    return [
        reservations.reservation_body(reservation)
        for reservation in reservations.list_visible(current_principal(request))
    ]


@router.post("/v1/scheduler/reservations", status_code=201)
def create_reservation(body: CreateReservationRequest, request: Request) -> dict[str, Any]:
    return reservations.reservation_body(
        reservations.create_reservation(body, current_principal(request), actor_of(request))
    )


@router.delete("/v1/scheduler/reservations/{reservationId}", status_code=204, include_in_schema=False)
def release_reservation(reservationId: str, request: Request) -> Response:
    reservations.release(reservationId, current_principal(request), actor_of(request))
    return Response(status_code=204)


@router.patch("/v1/scheduler/jobs/{jobId}/priority")
def change_priority(jobId: str, body: PriorityRequest, request: Request) -> dict[str, Any]:
    task = tasks.change_priority(jobId, body.priority, current_principal(request), actor_of(request))
    return tasks.task_body(task)


@router.get("/v1/scheduler/jobs/{jobId}/stream")
def job_stream(jobId: str, request: Request, last_event_id: str | None = Header(None)) -> StreamingResponse:
    events = scheduler.job_events(jobId, scheduler.parse_last_event_id(last_event_id), current_principal(request))
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/v1/scheduler/workers", status_code=201, include_in_schema=False)
def register_worker(body: RegisterWorkerRequest, request: Request) -> JSONResponse:
    require_worker(request, body.id)
    worker, created = workers.register_worker(body, actor_of(request), admin=current_principal(request).is_admin)
    return JSONResponse(workers.worker_body(worker), status_code=201 if created else 200)


@router.post("/v1/scheduler/workers/{workerId}/heartbeat", include_in_schema=False)
def heartbeat(workerId: str, request: Request, body: WorkerHeartbeat | None = None) -> dict[str, Any]:
    require_worker(request, workerId)
    held = (
        None if body is None or body.leases is None else {lease.task_id: lease.fencing_token for lease in body.leases}
    )
    return workers.heartbeat(workerId, held, None if body is None else body.plugins)


@router.post("/v1/scheduler/workers/{workerId}/lease", include_in_schema=False, response_model=None)
def lease(workerId: str, request: Request) -> dict[str, Any] | Response:
    require_worker(request, workerId)
    task = cluster.lease_task(workerId)
    return task_io.lease_answer(task, workerId) if task is not None else Response(status_code=204)


@router.post("/v1/scheduler/jobs/{jobId}/state", include_in_schema=False)
def report_state(jobId: str, body: JobStateReport, request: Request) -> dict[str, Any]:
    require_worker(request, body.worker_id)
    return task_io.report_answer(workers.report_state(jobId, body))
