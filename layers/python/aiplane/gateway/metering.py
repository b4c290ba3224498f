"""Metering of a chat completion: admission under the limits before the backend is called, and
accounting once the backend's usage is known. The accounting leaves the request's path as one SQS
message (the spend-log queue, with its DLQ), sent after the response (`defer`); the `runtime_spend`
worker settles it in DynamoDB. Chains' model calls are metered the same way (`metered_completion`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aiplane.data import aws
from aiplane.data.publish import queue_url
from aiplane.gateway import limits, spend
from aiplane.gateway.clients import text_of
from aiplane.gateway.inference import default_task_model
from aiplane.gateway.limits import Admission
from aiplane.gateway.routing import estimate_tokens
from aiplane.gateway.schemas import ChatCompletionBody
from aiplane.identity import access
from aiplane.identity.principal import Principal
from aiplane.observability import logger
from aiplane_shared.resources import SPEND_LOG_QUEUE


def admit(
    principal: Principal, body: ChatCompletionBody, model: str, granted: access.Granted | None = None
) -> Admission:
    """The request's place under every limit; it reserves its estimated maximum cost. `granted`: the route's
    permission check, re-checked by the admission."""
    prompt_tokens = estimate_tokens("\n".join(text_of(message.content) for message in body.messages))
    return limits.admit(principal, model, spend.cost(model, prompt_tokens, body.max_tokens or 0), granted)


def completed(
    admission: Admission,
    complete: Callable[[], dict[str, Any]],
    defer: Callable[[Callable[[], None]], Any] | None = None,
) -> dict[str, Any]:
    """Run a buffered completion and account for it (a failed one frees its reservation). `defer` (the
    response's background tasks) runs the accounting once the response is sent."""
    try:
        completion = complete()
    except Exception:
        account(admission, None, succeeded=False)
        raise
    usage = spend.usage_of_completion(completion)
    (defer or (lambda run: run()))(lambda: account(admission, usage, succeeded=True))
    return completion


def metered_completion(
    caller: Principal | None, body: ChatCompletionBody, complete: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """A model call made in-process on behalf of `caller` (a chain's step): admitted under the caller's key,
    user and model limits and accounted like a direct call. Without a caller (a system run) it is not metered."""
    if caller is None:
        return complete()
    return completed(admit(caller, body, body.model or default_task_model()), complete)


def metered_stream(
    caller: Principal | None, body: ChatCompletionBody, start: Callable[[Callable[[Any], None]], Iterator[str]]
) -> Iterator[str]:
    """A streamed model call made in-process on behalf of `caller` (a chain's final step), metered as
    `metered_completion` is."""
    if caller is None:
        return start(lambda usage: None)
    return streamed(admit(caller, body, body.model or default_task_model()), start)


def streamed(admission: Admission, start: Callable[[Callable[[Any], None]], Iterator[str]]) -> Iterator[str]:
    """Start a stream (a backend that fails before its first chunk is still an error status), then
    pass its SSE chunks through and account, with the usage the stream reports (`start` gets the
    callback), when it ends or the client goes away."""
    reported: list[spend.Usage] = []
    try:
        chunks = start(lambda usage: reported.append(spend.Usage(usage.prompt_tokens, usage.completion_tokens)))
    except Exception:
        account(admission, None, succeeded=False)
        raise
    return _passed(admission, chunks, reported)


def _passed(admission: Admission, chunks: Iterator[str], reported: list[spend.Usage]) -> Iterator[str]:
    succeeded = False
    try:
        for chunk in chunks:
            if limits.renew_due(admission, now := time.time()):
                limits.renew(admission, now)  # a long stream keeps its parallel slots
            yield chunk
        succeeded = True
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a client gone mid-stream: the stream ends (and reports its usage) before the accounting
        account(admission, reported[-1] if reported else None, succeeded=succeeded)


def account(admission: Admission, usage: spend.Usage | None, *, succeeded: bool) -> None:
    """Free the in-flight slots and queue the spend log. SQS is retried by boto3; a message it still
    refuses is logged whole at ERROR, so it can be replayed."""
    message = spend.spend_message(admission, usage, succeeded=succeeded, ended_at=time.time())
    try:
        limits.release(admission)
    finally:
        try:
            aws.client("sqs").send_message(QueueUrl=queue_url(SPEND_LOG_QUEUE), MessageBody=json.dumps(message))
        except (BotoCoreError, ClientError):
            logger.exception("spend log could not be queued", extra={"spend_log": message})
