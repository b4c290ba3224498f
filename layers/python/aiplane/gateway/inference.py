"""Routed inference: chat completions (plain and streamed), prompts and embeddings.

Failure handling, in order: a transient failure (refused/reset connection, 502/503/504) is retried
on the same backend after a jittered backoff; a backend-side failure (5xx, timeout, 429, 401/403/404)
counts against the backend's `allowed_fails` and moves on to the next backend; when every backend of
the model failed, the model's `fallbacks` are tried, and when the prompt is too long for it (by the
declared context length or by the backend's own 400) its `contextWindowFallbacks`. A 4xx that is
about the request reaches the client as that 4xx with the backend's message.

Every chat completion ends in `account(Usage)`, buffered or streamed, with the backend's real token
counts (streams ask OpenAI-compatible backends for them with `stream_options.include_usage`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from aiplane import outbound
from aiplane.errors import (
    AiplaneError,
    BadGatewayError,
    ErrorKind,
    GatewayTimeoutError,
    UnavailableError,
    ValidationError,
)
from aiplane.gateway import routing
from aiplane.gateway.clients import BackendFailure, ChatDelta, ChatResult, OllamaClient, text_of
from aiplane.gateway.routing import (
    CHAT,
    EMBED,
    PROMPT,
    STREAM,
    Target,
    estimate_tokens,
    fallbacks_of,
    normalise,
    targets_for,
)
from aiplane.gateway.schemas import ChatCompletionBody
from aiplane.observability import logger
from aiplane.outbound_policy import OutboundRefused
from aiplane.settings import get_settings

DEFAULT_TASK_MODEL = "phi3:3.8b"
DEFAULT_EMBED_MODEL = "nomic-embed-text:latest"
EXECUTE_SYSTEM_PROMPT = (
    "You are a task-processing engine called by another program. Answer with exactly what the task asks for, "
    "without preamble or explanation."
)
EXECUTE_TEMPERATURE = 0.1
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
# A backend's 4xx keeps its status where the runtime envelope has a kind for it; others are a 400.
_KIND_OF_STATUS = {
    401: ErrorKind.INVALID_CREDENTIALS,
    402: ErrorKind.PAYMENT_REQUIRED,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    409: ErrorKind.CONFLICT,
    413: ErrorKind.PAYLOAD_TOO_LARGE,
    429: ErrorKind.RATE_LIMITED,
}

Result = TypeVar("Result")


def default_task_model() -> str:
    return get_settings().default_task_model or DEFAULT_TASK_MODEL


def default_embed_model() -> str:
    return get_settings().default_embed_model or DEFAULT_EMBED_MODEL


@dataclass(frozen=True)
class Usage:
    """What one chat completion used, as the backend counted it (estimated only when it said nothing)."""

    model: str  # the model name routed (a fallback's, when one served)
    backend_id: str
    backend_model: str  # the name the backend was sent
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def openai(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


def account(usage: Usage) -> None:
    """The one place every chat completion's usage arrives once known, buffered or streamed."""
    routing.observe_tokens(usage.backend_id, usage.total_tokens)
    logger.info("chat usage", extra=asdict(usage))


# ---------------------------------------------------------------- failover, retries and fallbacks


def _rejection(failure: BackendFailure) -> AiplaneError:
    """A backend's 4xx, as the client sees it: its status (where the envelope has one) and its message."""
    if failure.context_window_exceeded:
        return ValidationError(failure.detail, code=CONTEXT_LENGTH_EXCEEDED, param="messages")
    status = failure.status or 400
    headers = {"Retry-After": failure.retry_after} if status == 429 and failure.retry_after else None
    return AiplaneError(
        failure.detail,
        code="backend_rejected",
        headers=headers,
        kind=_KIND_OF_STATUS.get(status, ErrorKind.BAD_REQUEST),
    )


def with_failover(
    targets: list[Target], call: Callable[[Target], Result], *, hold: bool = False
) -> tuple[Target, Result]:
    """Call the targets in order until one answers. A transient failure is retried on the same backend
    first; a backend-side one is counted towards its cooldown and moves on; a request-side 4xx is the answer.
    A backend the outbound-URL policy refuses is skipped; when every one is, the refusal is the answer (400).
    `hold`: the caller ends the backend's in-flight count (`routing.done`), when its stream ends."""
    settings = get_settings()
    last: BackendFailure | None = None
    refused: OutboundRefused | None = None
    for target in targets:
        backend_id = target.backend.id
        for attempt in range(settings.gateway_retries + 1):
            routing.begin(backend_id)
            started = time.monotonic()
            try:
                result = call(target)
            except OutboundRefused as refusal:
                routing.done(backend_id)
                logger.warning(
                    "backend refused by the outbound-URL policy",
                    extra={"backend": backend_id, "error": refusal.message},
                )
                refused = refusal
                break
            except BackendFailure as failure:
                routing.done(backend_id)
                logger.warning(
                    "backend failed",
                    extra={
                        "backend": backend_id,
                        "error": str(failure),
                        "status": failure.status,
                        "retryable": failure.retryable,
                        "attempt": attempt,
                    },
                )
                if not failure.retryable:
                    raise (
                        _rejection(failure)
                        if failure.status and 400 <= failure.status < 500
                        else BadGatewayError(str(failure), code="backend_error")
                    ) from None
                if failure.transient and attempt < settings.gateway_retries:
                    time.sleep(outbound.backoff_s(attempt, settings.gateway_retry_backoff_s))
                    continue
                routing.record_failure(backend_id, str(failure), cool_now=failure.status == 429)
                last = failure
                break
            except BaseException:
                routing.done(backend_id)
                raise
            if not hold:
                routing.done(backend_id)
                routing.observe_first_token(backend_id, time.monotonic() - started)
            return target, result
    if last is None:
        assert refused is not None
        raise refused
    if last.status and 400 <= last.status < 500:
        raise _rejection(last)
    if last.timeout:
        raise GatewayTimeoutError(f"every eligible backend failed; last: {last}", code="backend_timeout")
    raise BadGatewayError(f"every eligible backend failed; last: {last}", code="backend_error")


def _targets(model_name: str, capability: str, input_text: str, providers: Sequence[str]) -> list[Target]:
    """The model's backends; with `providers` (backend types, in order of preference), only theirs:
    the first provider's backends first, then the next one's, so a failing provider fails over."""
    if not providers:
        return targets_for(model_name, capability, input_text=input_text)
    targets: list[Target] = []
    unavailable: UnavailableError | None = None
    for provider in dict.fromkeys(providers):
        try:
            targets += targets_for(model_name, capability, input_text=input_text, provider=provider)
        except UnavailableError as error:  # this provider serves no backend for the model; the next may
            unavailable = unavailable or error
    if not targets:
        assert unavailable is not None
        raise unavailable
    return targets


def _routed(
    model_name: str,
    capability: str,
    call: Callable[[Target], Result],
    *,
    input_text: str = "",
    providers: Sequence[str] = (),
    fallbacks: list[str] | None = None,
    hold: bool = False,
) -> tuple[str, Target, Result]:
    """The model's backends, then its fallbacks: (the model name that served, its target, the answer)."""
    queue, tried = [model_name], set()
    first_error: AiplaneError | None = None
    while queue:
        name = queue.pop(0)
        if normalise(name) in tried:
            continue
        tried.add(normalise(name))
        try:
            target, result = with_failover(_targets(name, capability, input_text, providers), call, hold=hold)
            return name, target, result
        except AiplaneError as error:
            first_error = first_error or error
            if error.code == CONTEXT_LENGTH_EXCEEDED:
                queue[0:0] = fallbacks_of(name, context_window=True)
            elif error.status >= 500 or error.status in (404, 429):
                queue.extend(fallbacks_of(name) if error.code != "model_not_found" else [])
            elif name == model_name:
                raise  # the request itself is at fault; a fallback that cannot serve it just gives way
            if name == model_name:
                queue.extend(fallbacks or [])
            if queue:
                logger.info(
                    "falling back to another model", extra={"model": name, "error": error.message, "next": queue[0]}
                )
    assert first_error is not None
    raise first_error


# ---------------------------------------------------------------- chat completions


def _messages(body: ChatCompletionBody) -> list[dict[str, Any]]:
    return [message.model_dump(exclude_none=True) for message in body.messages]


def _input_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(text_of(message.get("content")) for message in messages)


def _request_fallbacks(body: ChatCompletionBody) -> list[str]:
    """LiteLLM's per-request `fallbacks`: model names to try after the declared ones."""
    extra = (body.model_extra or {}).get("fallbacks")
    return [name for name in extra if isinstance(name, str) and name.strip()] if isinstance(extra, list) else []


def chat_completion(body: ChatCompletionBody, *, providers: Sequence[str] = ()) -> dict[str, Any]:
    """An OpenAI `chat.completion` for the request (on backends of `providers` only, when given)."""
    messages = _messages(body)
    options = body.options()
    served, target, result = _routed(
        body.model or default_task_model(),
        CHAT,
        lambda t: t.client.chat(t.model.model, messages, options),
        input_text=_input_text(messages),
        providers=providers,
        fallbacks=_request_fallbacks(body),
    )
    usage = Usage(served, target.backend.id, target.model.model, result.prompt_tokens, result.completion_tokens)
    account(usage)
    return _completion(served, result, usage)


def _completion(model_name: str, result: ChatResult, usage: Usage) -> dict[str, Any]:
    choices = result.choices or [
        {"index": 0, "message": _assistant_message(result), "finish_reason": result.finish_reason}
    ]
    completion = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": choices,
        "usage": usage.openai(),
    }
    if result.system_fingerprint:
        completion["system_fingerprint"] = result.system_fingerprint
    return completion


def _assistant_message(result: ChatResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.tool_calls:
        message["tool_calls"] = result.tool_calls
    return message


def chat_completion_stream(
    body: ChatCompletionBody, on_usage: Callable[[Usage], None] | None = None, *, providers: Sequence[str] = ()
) -> Iterator[str]:
    """SSE lines of `chat.completion.chunk`s ending with `data: [DONE]`; `on_usage` gets the stream's
    usage when it ends (whether or not the client asked for a usage chunk).

    The backend is chosen (with failover) before this returns, so a failure to connect is still
    an error status; once chunks flow, a broken stream ends with an error event and [DONE].
    """
    messages = _messages(body)
    options = body.options()

    def open_stream(target: Target) -> Iterator[ChatDelta]:
        started = time.monotonic()
        deltas = _primed(target.client.chat_stream(target.model.model, messages, options))
        routing.observe_first_token(target.backend.id, time.monotonic() - started)
        return deltas

    input_text = _input_text(messages)
    served, target, deltas = _routed(
        body.model or default_task_model(),
        STREAM,
        open_stream,
        input_text=input_text,
        providers=providers,
        fallbacks=_request_fallbacks(body),
        hold=True,
    )
    return _sse_chunks(
        served, target, deltas, include_usage=body.include_usage(), input_text=input_text, on_usage=on_usage
    )


def _primed(deltas: Iterator[ChatDelta]) -> Iterator[ChatDelta]:
    """Read the first delta now, so a backend that fails at once still counts for failover."""
    first = next(deltas, None)

    def chained() -> Iterator[ChatDelta]:
        if first is not None:
            yield first
        yield from deltas

    return chained()


def _sse_chunks(
    model_name: str,
    target: Target,
    deltas: Iterator[ChatDelta],
    *,
    include_usage: bool,
    input_text: str,
    on_usage: Callable[[Usage], None] | None = None,
) -> Iterator[str]:
    """The backend's deltas as OpenAI chunks (content, tool-call deltas, logprobs, one finish per choice),
    then a usage chunk when the client asked for one. The usage is accounted however the stream ends."""
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(payload)}\n\n"

    def choice(index: int, delta: dict[str, Any], finish_reason: str | None, logprobs: Any = None) -> dict[str, Any]:
        entry = {"index": index, "delta": delta, "finish_reason": finish_reason}
        if logprobs is not None:
            entry["logprobs"] = logprobs
        return entry

    started: set[int] = {0}
    finished: set[int] = set()
    reported: tuple[int, int] | None = None
    streamed_characters = 0
    broken = False
    try:
        yield chunk([choice(0, {"role": "assistant", "content": ""}, None)])
        try:
            for delta in deltas:
                if delta.usage is not None:
                    reported = delta.usage
                    continue
                delta_body: dict[str, Any] = {}
                if delta.index not in started:
                    started.add(delta.index)
                    delta_body["role"] = "assistant"
                if delta.content:
                    delta_body["content"] = delta.content
                    streamed_characters += len(delta.content)
                if delta.tool_calls:
                    delta_body["tool_calls"] = delta.tool_calls
                    streamed_characters += sum(len(json.dumps(call)) for call in delta.tool_calls)
                if delta_body or delta.logprobs is not None:
                    yield chunk([choice(delta.index, delta_body, None, delta.logprobs)])
                if delta.finish_reason and delta.index not in finished:
                    finished.add(delta.index)
                    yield chunk([choice(delta.index, {}, delta.finish_reason)])
        except BackendFailure as failure:
            logger.warning("backend stream broke", extra={"backend": target.backend.id, "error": str(failure)})
            error = {"error": {"code": "backend_error", "message": str(failure), "param": None, "type": "server_error"}}
            yield f"data: {json.dumps(error)}\n\n"
            broken = True
        if not broken and 0 not in finished:
            yield chunk([choice(0, {}, "stop")])
        usage = _stream_usage(model_name, target, reported, input_text, streamed_characters)
        if include_usage:
            yield chunk([], usage=usage.openai())
        yield "data: [DONE]\n\n"
    finally:
        close = getattr(deltas, "close", None)
        if close:
            close()
        routing.done(target.backend.id)
        final = _stream_usage(model_name, target, reported, input_text, streamed_characters)
        account(final)
        if on_usage is not None:
            on_usage(final)


def _stream_usage(
    model_name: str, target: Target, reported: tuple[int, int] | None, input_text: str, characters: int
) -> Usage:
    if reported is not None:
        return Usage(model_name, target.backend.id, target.model.model, *reported)
    return Usage(
        model_name,
        target.backend.id,
        target.model.model,
        estimate_tokens(input_text),
        characters // routing.CHARACTERS_PER_TOKEN,
        estimated=True,
    )


def execute(prompt: str, model_name: str, provider: str) -> dict[str, Any]:
    """POST /execute: one prompt through a prompt-capable model, machine-to-machine style."""
    model_name = model_name or default_task_model()
    options = {"temperature": EXECUTE_TEMPERATURE}

    def call(target: Target) -> ChatResult:
        if isinstance(target.client, OllamaClient):
            return target.client.generate(target.model.model, prompt, EXECUTE_SYSTEM_PROMPT, options)
        messages = [{"role": "system", "content": EXECUTE_SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
        return target.client.chat(target.model.model, messages, options)

    served, target, result = _routed(
        model_name, PROMPT, call, input_text=prompt, providers=(provider,) if provider else ()
    )
    account(Usage(served, target.backend.id, target.model.model, result.prompt_tokens, result.completion_tokens))
    return {"id": str(uuid.uuid4()), "response": result.content}


def embed(inputs: list[str], model_name: str) -> list[list[float]]:
    _, _, vectors = _routed(model_name, EMBED, lambda t: t.client.embed(t.model.model, inputs))
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
        "object": "list",
        "model": model_name,
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def default_model() -> dict[str, Any]:
    return {"modelName": default_task_model()}
