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

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from aiplane.api.permissions import resource_permission
from aiplane.gateway import inference
from aiplane.gateway.schemas import ChatCompletionBody, EmbedBody, EmbeddingsBody, ExecuteBody
from functions.runtime_exec import supported

router = APIRouter(dependencies=[Depends(resource_permission("exec"))])
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
def chat_completions(body: ChatCompletionBody) -> dict[str, Any] | StreamingResponse:
    if body.stream:
        chunks = inference.chat_completion_stream(body)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return inference.chat_completion(body)


@router.post("/v1/embeddings", include_in_schema=False)
def embeddings(body: EmbeddingsBody) -> dict[str, Any]:
    return inference.embeddings(body.input, body.model)
