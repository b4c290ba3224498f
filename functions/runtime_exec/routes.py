"""runtime exec routes.

Contract rows of this group:
- GET /defaultmodel
- GET /supported
- POST /embed
- POST /execute
- POST /v1/chat/completions (stream: true answers SSE chunks ending with data: [DONE])
Extra route: POST /v1/embeddings (OpenAI embeddings).
"""

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import StreamingResponse

from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.gateway import inference, metering
from aiplane.gateway.schemas import ChatCompletionBody, EmbedBody, EmbeddingsBody, ExecuteBody
from aiplane.identity.access import Granted
from functions.runtime_exec import supported

exec_permission = resource_permission("exec")
router = APIRouter(dependencies=[Depends(exec_permission)])
router.include_router(supported.router)


@router.get("/defaultmodel")
def default_model() -> dict[str, Any]:
    return inference.default_model()


@router.post("/execute")
def execute(body: ExecuteBody) -> dict[str, Any]:
    return inference.execute(body.prompt, body.model_name, body.model_provider)


@router.post("/embed")
def embed(body: EmbedBody) -> dict[str, Any]:
    return inference.embed_default(body.text)


@router.post("/v1/chat/completions", response_model=None)
def chat_completions(
    body: ChatCompletionBody,
    request: Request,
    background: BackgroundTasks,
    granted: Granted | None = Depends(exec_permission),
) -> dict[str, Any] | StreamingResponse:
    # Budgets and rate limits first, accounting with the backend's usage after the response (aiplane.gateway.metering).
    # The admission re-checks the grant of the router's permission check too (`granted`: the same check, run once).
    model = body.model or inference.default_task_model()
    admission = metering.admit(current_principal(request), body, model, granted)
    if body.stream:
        chunks = metering.streamed(admission, lambda report: inference.chat_completion_stream(body, on_usage=report))
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return metering.completed(admission, lambda: inference.chat_completion(body), defer=background.add_task)


@router.post("/v1/embeddings", include_in_schema=False)
def embeddings(body: EmbeddingsBody) -> dict[str, Any]:
    return inference.embeddings(body.input, body.model)
