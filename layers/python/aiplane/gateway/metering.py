"""Metering of a chat completion: admission under the limits before the backend is called, and
accounting once the backend's usage is known. The accounting leaves the request's path as one SQS
message (the spend-log queue, with its DLQ); the `runtime_spend` worker settles it in DynamoDB."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiplane_shared.resources import SPEND_LOG_QUEUE
from botocore.exceptions import BotoCoreError, ClientError

from aiplane.data import aws
from aiplane.gateway import limits, spend
from aiplane.gateway.clients import text_of
from aiplane.gateway.limits import Admission
from aiplane.gateway.messaging import queue_url
from aiplane.gateway.schemas import ChatCompletionBody
from aiplane.identity.principal import Principal
from aiplane.observability import logger


def admit(principal: Principal, body: ChatCompletionBody, model: str) -> Admission:
    """The request's place under every limit; it reserves its estimated maximum cost."""
    prompt_tokens = spend.estimated_tokens("\n".join(text_of(message.content) for message in body.messages))
    admission = limits.admit(principal, model, spend.cost(model, prompt_tokens, body.max_tokens or 0))
    admission.prompt_estimate = prompt_tokens
    return admission


def completed(admission: Admission, complete: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a buffered completion and account for it (a failed one frees its reservation)."""
    try:
        completion = complete()
    except Exception:
        account(admission, None, succeeded=False)
        raise
    account(admission, spend.usage_of_completion(completion), succeeded=True)
    return completion


def streamed(admission: Admission, start: Callable[[], Iterator[str]]) -> Iterator[str]:
    """Start a stream (a backend that fails before its first chunk is still an error status), then
    pass its SSE chunks through and account when it ends or the client goes away."""
    try:
        chunks = start()
    except Exception:
        account(admission, None, succeeded=False)
        raise
    return _passed(admission, chunks)


def _passed(admission: Admission, chunks: Iterator[str]) -> Iterator[str]:
    """Accounts with the usage of the last chunk that carries one (`stream_options.include_usage`)."""
    usage: spend.Usage | None = None
    streamed_chars = 0
    succeeded = False
    try:
        for chunk in chunks:
            payload = _payload(chunk)
            usage = spend.usage_of_chunk(payload) or usage
            streamed_chars += sum(len(text_of((choice.get("delta") or {}).get("content"))) for choice in payload.get("choices") or ())
            yield chunk
        succeeded = True
    finally:
        if usage is None and streamed_chars:  # a backend that sent no usage: estimated, ≈ 4 characters per token
            usage = spend.Usage(admission.prompt_estimate, spend.estimated_tokens("x" * (streamed_chars - 1)))
        account(admission, usage, succeeded=succeeded)


def _payload(chunk: str) -> dict[str, Any]:
    try:
        payload = json.loads(chunk.removeprefix("data: ").strip())
    except ValueError:  # [DONE]
        return {}
    return payload if isinstance(payload, dict) else {}


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
