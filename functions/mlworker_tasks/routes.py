"""mlworker tasks routes.

Contract rows of this group:
- DELETE /v1/tasks/{taskId}
- GET /v1/queue
- GET /v1/tasks
- GET /v1/tasks/{taskId}
- POST /v1/tasks
"""

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from aiplane.api.auth import current_principal
from aiplane.data.pagination import parse_limit
from aiplane.errors import ValidationError
from aiplane.mlworker import task_io, tasks, workers
from aiplane.mlworker.requests import actor_of
from aiplane.mlworker.schemas import CreateTaskRequest

router = APIRouter()


@router.post("/v1/tasks", status_code=201)
def create_task(body: CreateTaskRequest, request: Request) -> dict[str, Any]:
    return tasks.task_body(tasks.create_task(body, actor_of(request)))


@router.get("/v1/tasks")
def list_tasks(
    request: Request,
    status: str | None = None,
    user_id: str | None = None,
    limit: str | None = None,
    offset: int = Query(0, ge=0),
    node_count: int | None = Query(None, ge=1),  # filters: only tasks of that many nodes
    reservation_id: str | None = None,
    plugin_configs: str | None = None,
) -> dict[str, Any]:
    if plugin_configs is not None:
        raise ValidationError(
            "plugin_configs is not a list filter; configure plugins with PUT /v1/plugins/{name}/config",
            param="plugin_configs",
        )
    page_limit = parse_limit(limit, default=tasks.DEFAULT_LIST_LIMIT, maximum=tasks.MAX_LIST_LIMIT)
    page, total = tasks.list_tasks(
        status=status,
        user_id=user_id,
        limit=page_limit,
        offset=offset,
        principal=current_principal(request),
        reservation_id=reservation_id,
        node_count=node_count,
    )
    return {"tasks": [tasks.task_body(task) for task in page], "total": total, "limit": page_limit, "offset": offset}


@router.get("/v1/tasks/{taskId}")
def get_task(taskId: str, request: Request) -> dict[str, Any]:
    return task_io.task_detail(tasks.get_own_task(taskId, current_principal(request)))


@router.delete("/v1/tasks/{taskId}", status_code=204)
def cancel_task(taskId: str, request: Request) -> Response:
    tasks.cancel_task(taskId, current_principal(request), actor_of(request))
    return Response(status_code=204)


@router.get("/v1/queue")
def queue(request: Request, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    page_limit = parse_limit(limit, default=tasks.DEFAULT_QUEUE_LIMIT, maximum=tasks.MAX_LIST_LIMIT)
    active = sum(1 for worker in workers.list_workers() if workers.effective_status(worker) == workers.ACTIVE)
    return tasks.queue_stats(active, current_principal(request), page_limit, cursor)
