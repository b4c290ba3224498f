"""runtime queue routes: the model-download queue.

Contract rows of this group:
- GET /queue
- DELETE /queue/cancel
- GET /queue/inProgress (SSE; ends once no pull has run for a few seconds, or after a window)
- DELETE /queue/{model}
"""

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from aiplane.api.permissions import resource_permission
from aiplane.errors import ValidationError
from aiplane.gateway import downloads, views

router = APIRouter(dependencies=[Depends(resource_permission("queue"))])

IDLE_END_S = 3.0
STREAM_WINDOW_S = 25.0  # under API Gateway's 29 s integration limit


@router.get("/queue")
def list_queue() -> list[dict[str, Any]]:
    return [views.job_view(job) for job in downloads.active_jobs()]


@router.delete("/queue/cancel")
def cancel(url: str | None = None, model: str | None = None) -> str:
    if not url and not model:
        raise ValidationError("give url (one backend) or model (all backends)", param="url")
    downloads.cancel(url=url, model=model)
    return "Model download cancellation initiated"


@router.get("/queue/inProgress")
def in_progress() -> StreamingResponse:
    events = downloads.progress_events(views.progress_view, idle_end_s=IDLE_END_S, window_s=STREAM_WINDOW_S)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.delete("/queue/{model:path}")
def remove_from_queue(model: str) -> str:
    downloads.remove_model(model)
    return "Model removed from queue"
