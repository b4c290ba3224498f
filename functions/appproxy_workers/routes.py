"""appproxy workers routes.

Contract rows of this group:
- DELETE /api/worker/{worker_id}
- GET /api/slots
- GET /api/worker
- GET /api/worker/{worker_id}
- GET /api/worker/{worker_id}/circuits
- PATCH /api/worker/{worker_id}
- PUT /api/worker
"""

from typing import Any

from fastapi import APIRouter, Body, Request

from aiplane.appproxy import circuits, workers
from aiplane.appproxy.schemas import ListSlotsRequest, WorkerRequest, parse_params

router = APIRouter()


@router.get("/api/slots")
def list_slots(request: Request, body: dict[str, Any] | None = Body(default=None)) -> dict[str, Any]:
    params = parse_params(ListSlotsRequest, request.query_params, body)
    return {"slots": workers.list_slots(params.wsproxy_host, in_use_only=params.in_use)}


@router.get("/api/worker")
def list_workers() -> dict[str, Any]:
    return {"workers": [workers.serialize_worker(worker) for worker in workers.list_workers()]}


@router.put("/api/worker")
def register_worker(body: WorkerRequest) -> dict[str, Any]:
    return workers.serialize_worker(workers.register_worker(body))


@router.get("/api/worker/{worker_id}")
def get_worker(worker_id: str) -> dict[str, Any]:
    return workers.serialize_worker(workers.get_worker(worker_id))


@router.patch("/api/worker/{worker_id}")
def heartbeat(worker_id: str) -> dict[str, Any]:
    return workers.serialize_worker(workers.heartbeat(worker_id))


@router.delete("/api/worker/{worker_id}")
def deregister_worker(worker_id: str) -> dict[str, bool]:
    workers.deregister_worker(worker_id)
    return {"success": True}


@router.get("/api/worker/{worker_id}/circuits")
def worker_circuits(worker_id: str) -> dict[str, Any]:
    workers.get_worker(worker_id)
    return {"circuits": [circuits.serialize_circuit(circuit) for circuit in circuits.circuits_of_worker(worker_id)]}
