"""runtime chains routes: run chains (/tasks, OpenAI-compatible), store them (/taskchains, /chains).

Contract rows of this group:
- DELETE /taskchains/{id}
- GET /openai/{chainID}/v1/models
- GET /taskchains
- GET /taskchains/{id}
- POST /chains
- POST /openai/{chainID}/v1/chat/completions
- POST /taskchains
- POST /tasks
- PUT /taskchains/{id}
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.chains import runner, store, streaming
from aiplane.chains.engine import openai_completion
from aiplane.chains.llm_port import default_llm
from aiplane.chains.model import DATA_TYPES, dump_chain, parse_chain
from aiplane.data.pagination import parse_limit
from aiplane.errors import ConflictError, UnavailableError, ValidationError
from aiplane.identity.access import EDIT
from aiplane.identity.principal import Principal

router = APIRouter(dependencies=[Depends(resource_permission("chains"))])


class TaskExecutionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: Any = None
    inputType: str = "string"
    chain: dict[str, Any]


class OpenAIChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = ""
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False
    tools: list[dict[str, Any]] | None = None


@router.post("/tasks")
def execute_tasks(request: TaskExecutionRequest, http: Request) -> dict[str, Any]:
    if request.inputType not in DATA_TYPES:
        raise ValidationError(f"unknown inputType {request.inputType!r}", param="inputType")
    chain = parse_chain(request.chain)
    output, output_type, state = runner.run_inline(chain, request.input, request.inputType, current_principal(http))
    return {"output": output, "outputType": output_type, "state": state}


def _save(raw: Any, principal: Principal, *, create: bool, chain_id: str | None = None) -> dict[str, Any]:
    chain = parse_chain(raw)
    if not chain.id:
        raise ValidationError("a stored chain needs an id", param="id")
    if chain_id is not None and chain.id != chain_id:
        raise ValidationError("the body's id differs from the path's", param="id")
    # Check before deploying, so a 404 or 409 leaves the existing state machine untouched.
    if not create:
        store.get_task_chain_record(chain.id, principal, EDIT)
    elif store.task_chain_exists(chain.id):
        raise ConflictError(f"task chain {chain.id!r} already exists", param="id")
    arn = runner.deploy(chain, key=runner.stored_chain_key(chain.id))
    return store.save_task_chain(chain.id, dump_chain(chain), arn, create=create, owner_id=principal.id)


@router.post("/taskchains", status_code=201)
def create_task_chain(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return _save(body, current_principal(request), create=True)


@router.get("/taskchains")
def list_task_chains(
    request: Request, limit: str | None = Query(None), cursor: str | None = Query(None)
) -> list[dict[str, Any]]:
    return store.list_task_chains(parse_limit(limit), store.parse_cursor(cursor), current_principal(request))


@router.get("/taskchains/{id}")
def get_task_chain(id: str, request: Request) -> dict[str, Any]:
    return json.loads(store.get_task_chain_record(id, current_principal(request)).definition)


@router.put("/taskchains/{id}")
def update_task_chain(id: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return _save({**body, "id": body.get("id") or id}, current_principal(request), create=False, chain_id=id)


@router.delete("/taskchains/{id}")
def delete_task_chain(id: str, request: Request) -> str:
    record = store.delete_task_chain(id, current_principal(request))
    runner.remove(record.state_machine_arn)
    return f"task chain {id} deleted"


@router.post("/chains", status_code=201)
def set_chain(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """The legacy "set": store (create or replace) a chain definition and echo it."""
    chain = parse_chain(body)
    if not chain.id:
        raise ValidationError("a stored chain needs an id", param="id")
    return _save(body, current_principal(request), create=not store.task_chain_exists(chain.id))


@router.get("/openai/{chainID}/v1/models")
def openai_models(chainID: str, limit: str | None = Query(None), cursor: str | None = Query(None)) -> dict[str, Any]:
    store.parse_cursor(cursor)
    try:
        models = default_llm().models()
    except UnavailableError:  # no LLM gateway configured: no models
        models = []
    return {"object": "list", "data": models[: parse_limit(limit)]}


@router.post("/openai/{chainID}/v1/chat/completions")
def openai_chat_completions(
    chainID: str, request: OpenAIChatRequest, http: Request, stackTrace: str | None = Query(None)
):
    principal = current_principal(http)
    runner.require_chain(chainID, principal)
    body = request.model_dump(exclude_none=True)
    body.pop("stream", None)
    if request.stream:  # the final model step's tokens stream as they arrive (aiplane.chains.streaming)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = streaming.stream_stored(chainID, body, request.model, principal, include_usage=include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    output, output_type, state = runner.run_stored(chainID, body, "openai_chat", principal)
    completion = openai_completion(output, output_type, request.model)
    if stackTrace in ("true", "True"):
        completion["stackTrace"] = state
    return JSONResponse(completion)
