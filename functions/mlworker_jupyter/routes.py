"""mlworker jupyter routes.

Contract rows of this group:
- DELETE /v1/jupyter/services/{serviceId}
- GET /v1/jupyter/services
- POST /v1/jupyter/services

GPU worker protocol (beyond the contract, an admin API key or the worker's own GPU agent credential;
see EXTRA_ROUTES, GPU_WORKER_ROUTES):
- POST /v1/jupyter/workers/{workerId}/services (the services the worker runs; takes starting ones)
- POST /v1/jupyter/services/{serviceId}/state
"""

from typing import Any

from fastapi import APIRouter, Request, Response

from aiplane.api.auth import current_principal
from aiplane.mlworker import jupyter, views
from aiplane.mlworker.requests import actor_of, require_worker
from aiplane.mlworker.schemas import JupyterStateReport, StartJupyterRequest

router = APIRouter()


@router.get("/v1/jupyter/services")
def list_services(request: Request) -> list[dict[str, Any]]:
    return [views.service_body(service) for service in jupyter.list_services(current_principal(request))]


@router.post("/v1/jupyter/services", status_code=201)
def start_service(body: StartJupyterRequest, request: Request) -> dict[str, Any]:
    return views.service_body(jupyter.start_service(body, actor_of(request)))


@router.delete("/v1/jupyter/services/{serviceId}", status_code=204)
def stop_service(serviceId: str, request: Request) -> Response:
    jupyter.stop_service(serviceId, current_principal(request), actor_of(request))
    return Response(status_code=204)


@router.post("/v1/jupyter/workers/{workerId}/services", include_in_schema=False)
def worker_services(workerId: str, request: Request) -> dict[str, Any]:
    require_worker(request, workerId)
    services = jupyter.assign_services(workerId, actor_of(request))
    return {"services": [views.worker_service_body(service) for service in services]}


@router.post("/v1/jupyter/services/{serviceId}/state", include_in_schema=False)
def report_state(serviceId: str, body: JupyterStateReport, request: Request) -> dict[str, Any]:
    require_worker(request, body.worker_id)
    return views.service_body(jupyter.report_state(serviceId, body, actor_of(request)))
