"""Routed inference: chat completions (plain and streamed), prompts and embeddings, with
failover to the next eligible backend when one fails (connection error, timeout, 5xx)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from aiplane.errors import BadGatewayError, GatewayTimeoutError
from aiplane.gateway.clients import BackendFailure, ChatDelta, ChatResult, OllamaClient, text_of
from aiplane.gateway.routing import CHAT, EMBED, PROMPT, STREAM, Target, cool_down, targets_for
from aiplane.gateway.schemas import ChatCompletionBody
from aiplane.observability import logger
from aiplane.outbound import OutboundRefused

DEFAULT_TASK_MODEL_VARIABLE = "AIPLANE_DEFAULT_TASK_MODEL"
DEFAULT_EMBED_MODEL_VARIABLE = "AIPLANE_DEFAULT_EMBED_MODEL"
DEFAULT_TASK_MODEL = "phi3:3.8b"
DEFAULT_EMBED_MODEL = "nomic-embed-text:latest"
EXECUTE_SYSTEM_PROMPT = (
    "You are a task-processing engine called by another program. Answer with exactly what the task asks for, "
    "without preamble or explanation."
)
EXECUTE_TEMPERATURE = 0.1

Result = TypeVar("Result")


def default_task_model() -> str:
    return os.environ.get(DEFAULT_TASK_MODEL_VARIABLE) or DEFAULT_TASK_MODEL


def default_embed_model() -> str:
    return os.environ.get(DEFAULT_EMBED_MODEL_VARIABLE) or DEFAULT_EMBED_MODEL


def with_failover(targets: list[Target], call: Callable[[Target], Result]) -> tuple[Target, Result]:
    """Call the first target that answers; a retryable failure cools the backend down and moves on.
    A backend the outbound-URL policy refuses is skipped; when every one is, the refusal is the answer (400)."""
    last: BackendFailure | None = None
    refused: OutboundRefused | None = None
    for target in targets:
        try:
            return target, call(target)
        except OutboundRefused as refusal:
            logger.warning("backend refused by the outbound-URL policy", extra={"backend": target.backend.id, "error": refusal.message})
            refused = refusal
        except BackendFailure as failure:
            logger.warning("backend failed", extra={"backend": target.backend.id, "error": str(failure), "retryable": failure.retryable})
            if not failure.retryable:
                raise BadGatewayError(str(failure), code="backend_error") from None
            cool_down(target.backend.id)
            last = failure
    if last is None:
        assert refused is not None
        raise refused
    if last.timeout:
        raise GatewayTimeoutError(f"every eligible backend failed; last: {last}", code="backend_timeout")
    raise BadGatewayError(f"every eligible backend failed; last: {last}", code="backend_error")


def _options(body: ChatCompletionBody) -> dict[str, Any]:
    # Tools travel to the backends that speak them (OpenAI-compatible, Ollama); Gemini ignores them.
    extra = body.model_extra or {}
    return {"temperature": body.temperature, "max_tokens": body.max_tokens, "top_p": body.top_p, "stop": body.stop,
            "tools": extra.get("tools"), "tool_choice": extra.get("tool_choice")}


def _messages(body: ChatCompletionBody) -> list[dict[str, Any]]:
    return [message.model_dump(exclude_none=True) for message in body.messages]


def _input_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(text_of(message.get("content")) for message in messages)


def chat_completion(body: ChatCompletionBody) -> dict[str, Any]:
    """An OpenAI `chat.completion` for the request."""
    model_name = body.model or default_task_model()
    messages = _messages(body)
    targets = targets_for(model_name, CHAT, input_text=_input_text(messages))
    _, result = with_failover(targets, lambda t: t.client.chat(t.model.model, messages, _options(body)))
    return _completion(model_name, result)


def _completion(model_name: str, result: ChatResult) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": model_name,
        "choices": [{"index": 0, "message": _assistant_message(result), "finish_reason": result.finish_reason}],
        "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                  "total_tokens": result.prompt_tokens + result.completion_tokens},
    }


def _assistant_message(result: ChatResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.tool_calls:
        message["tool_calls"] = result.tool_calls
    return message


def chat_completion_stream(body: ChatCompletionBody) -> Iterator[str]:
    """SSE lines of `chat.completion.chunk`s ending with `data: [DONE]`.

    The backend is chosen (with failover) before this returns, so a failure to connect is still
    an error status; once chunks flow, a broken stream ends with an error event and [DONE].
    """
    model_name = body.model or default_task_model()
    messages = _messages(body)
    targets = targets_for(model_name, STREAM, input_text=_input_text(messages))
    _, deltas = with_failover(targets, lambda t: _primed(t.client.chat_stream(t.model.model, messages, _options(body))))
    return _sse_chunks(model_name, deltas)


def _primed(deltas: Iterator[ChatDelta]) -> Iterator[ChatDelta]:
    """Read the first delta now, so a backend that fails at once still counts for failover."""
    first = next(deltas, None)

    def chained() -> Iterator[ChatDelta]:
        if first is not None:
            yield first
        yield from deltas

    return chained()


def _sse_chunks(model_name: str, deltas: Iterator[ChatDelta]) -> Iterator[str]:
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> str:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model_name,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        return f"data: {json.dumps(payload)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    finished = False
    try:
        for delta in deltas:
            if delta.content:
                yield chunk({"content": delta.content}, None)
            if delta.finish_reason:
                yield chunk({}, delta.finish_reason)
                finished = True
                break
    except BackendFailure as failure:
        logger.warning("backend stream broke", extra={"error": str(failure)})
        error = {"error": {"code": "backend_error", "message": str(failure), "param": None, "type": "server_error"}}
        yield f"data: {json.dumps(error)}\n\n"
        finished = True
    finally:
        close = getattr(deltas, "close", None)
        if close:
            close()
    if not finished:
        yield chunk({}, "stop")
    yield "data: [DONE]\n\n"


def execute(prompt: str, model_name: str, provider: str) -> dict[str, Any]:
    """POST /execute: one prompt through a prompt-capable model, machine-to-machine style."""
    model_name = model_name or default_task_model()
    targets = targets_for(model_name, PROMPT, input_text=prompt, provider=provider)
    options = {"temperature": EXECUTE_TEMPERATURE}

    def call(target: Target) -> ChatResult:
        if isinstance(target.client, OllamaClient):
            return target.client.generate(target.model.model, prompt, EXECUTE_SYSTEM_PROMPT, options)
        messages = [{"role": "system", "content": EXECUTE_SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
        return target.client.chat(target.model.model, messages, options)

    _, result = with_failover(targets, call)
    return {"id": str(uuid.uuid4()), "response": result.content}


def embed(inputs: list[str], model_name: str) -> list[list[float]]:
    targets = targets_for(model_name, EMBED)
    _, vectors = with_failover(targets, lambda t: t.client.embed(t.model.model, inputs))
    if len(vectors) != len(inputs):
        raise BadGatewayError("the backend returned a different number of embeddings than inputs", code="backend_error")
    return vectors


def embed_default(text: str) -> dict[str, Any]:
    return {"vector": embed([text], default_embed_model())[0]}


def embeddings(inputs: str | list[str], model_name: str) -> dict[str, Any]:
    """An OpenAI embeddings list."""
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    model_name = model_name or default_embed_model()
    vectors = embed(texts, model_name)
    tokens = sum(len(text) // 4 + 1 for text in texts)
    return {
        "object": "list", "model": model_name,
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def default_model() -> dict[str, Any]:
    return {"modelName": default_task_model()}


