"""Backend clients, one per protocol, reached over HTTP with httpx.

Every client answers in the same shapes (`ChatResult`, `ChatDelta`) so routing and the OpenAI
surface do not care which server answered. Failures are `BackendFailure`: `retryable` marks those
that justify trying the next backend (connection errors, timeouts, 5xx, 429, 401/403/404), `transient`
those worth one more try on the same backend first (connection refused/reset, 502/503/504). A 4xx
that is about the request itself (400, 413, 422...) is neither: the client gets it back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from aiplane import outbound, outbound_policy
from aiplane.settings import get_settings
from aiplane.snapshots import warm_before_snapshot

if TYPE_CHECKING:
    import httpx

CONNECT_TIMEOUT_S = 3.0
# One attempt may use half of a buffered route's budget, so a timed-out backend still leaves time
# to fail over to the next one before the route answers 504.
READ_TIMEOUT_S = get_settings().request_budget_s / 2
LIST_TIMEOUT_S = 10.0
GEMINI_DEFAULT_URL = "https://generativelanguage.googleapis.com"


@warm_before_snapshot
@cache
def _http() -> httpx.Client:
    """The one client of every backend call, through the outbound-URL policy (an OutboundRefused
    passes through as a 400). Made with the first call (listing backends or models makes none), or
    before a SnapStart snapshot."""
    import httpx

    return outbound.client(
        outbound_policy.BACKENDS,
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_keepalive_connections=50),
    )


# Statuses that say "this backend, not this request": try the next backend.
_BACKEND_SIDE_4XX = (401, 403, 404, 408, 429)
_TRANSIENT_STATUSES = (502, 503, 504)
_CONTEXT_WINDOW = re.compile(
    r"context (length|window)|maximum context|too many tokens|prompt is too long|input is too long", re.IGNORECASE
)


class BackendFailure(Exception):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        timeout: bool = False,
        status: int | None = None,
        transient: bool = False,
        detail: str = "",
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.timeout = timeout
        self.status = status
        self.transient = transient
        self.detail = detail or message  # the backend's own words, for the client
        self.retry_after = retry_after

    @property
    def context_window_exceeded(self) -> bool:
        return self.status == 400 and bool(_CONTEXT_WINDOW.search(self.detail))


@dataclass
class ChatResult:
    content: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: list[dict[str, Any]] | None = None  # OpenAI form
    # An OpenAI-compatible backend's own choices (n > 1, logprobs), passed through as they came.
    choices: list[dict[str, Any]] | None = None
    system_fingerprint: str | None = None


@dataclass
class ChatDelta:
    """One piece of a streamed answer, in OpenAI's delta terms; `usage` (prompt, completion) comes alone."""

    content: str = ""
    finish_reason: str | None = None
    index: int = 0
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: Any = None
    usage: tuple[int, int] | None = None


def _backend_message(raw: str) -> str:
    """The message out of an OpenAI ({"error": {"message"}}), Ollama ({"error": "..."}) or Gemini error body."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.strip()
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or raw).strip()
    return str(error or raw).strip()


def _failure(error: outbound.OutboundError, what: str) -> BackendFailure:
    """A failed backend call, in routing's terms (failover, a retry on the same backend, or the client's 4xx)."""
    if isinstance(error, outbound.TimedOut):
        return BackendFailure(f"{what} timed out: {error}", retryable=True, timeout=True)
    if isinstance(error, outbound.BadStatus):
        status = error.status
        detail = _backend_message(error.text[:2000])[:500]
        return BackendFailure(
            f"{what} answered {status}: {detail}".strip(),
            retryable=status >= 500 or status in _BACKEND_SIDE_4XX,
            status=status,
            transient=status in _TRANSIENT_STATUSES,
            detail=detail or f"the backend answered {status}",
            retry_after=error.retry_after,
        )
    if isinstance(error, outbound.BadResponse):
        return BackendFailure(f"{what} answered with invalid JSON", retryable=True)
    transient = isinstance(error, outbound.Unreachable) and error.transient
    return BackendFailure(f"{what} unreachable: {error}", retryable=True, transient=transient)


def _request(method: str, url: str, *, what: str, timeout: float | None = None, **kwargs: Any) -> Any:
    http = _http()
    try:
        response = outbound.send(
            outbound_policy.BACKENDS, method, url, timeout=timeout or http.timeout, via=http, **kwargs
        )
        return outbound.json_of(response) if response.content else {}
    except outbound.OutboundError as error:
        raise _failure(error, what) from None


def _stream(method: str, url: str, *, what: str, timeout: httpx.Timeout | None = None, **kwargs: Any) -> httpx.Response:
    """An open streaming response whose status is already checked (close it when done)."""
    http = _http()
    try:
        return outbound.open_stream(
            outbound_policy.BACKENDS, method, url, timeout=timeout or http.timeout, via=http, **kwargs
        )
    except outbound.OutboundError as error:
        raise _failure(error, what) from None


def _lines(response: httpx.Response, what: str) -> Iterator[str]:
    try:
        yield from outbound.lines(response)
    except outbound.OutboundError as error:
        raise BackendFailure(f"{what} stream broke: {error}", retryable=False, transient=True) from None


def _arguments_object(arguments: Any) -> Any:
    """OpenAI sends tool-call arguments as a JSON string, Ollama wants the object."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments or "{}")
        except ValueError:
            return {}
    return arguments or {}


def text_of(content: Any) -> str:
    """OpenAI message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


class OllamaClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.what = f"ollama {self.base_url}"

    def list_models(self) -> list[dict[str, Any]]:
        return _request("GET", f"{self.base_url}/api/tags", what=self.what, timeout=LIST_TIMEOUT_S).get("models") or []

    @staticmethod
    def _options(options: dict[str, Any]) -> dict[str, Any]:
        mapped = {
            "temperature": options.get("temperature"),
            "top_p": options.get("top_p"),
            "num_predict": options.get("max_tokens") or options.get("max_completion_tokens"),
            "stop": options.get("stop"),
            "seed": options.get("seed"),
            "frequency_penalty": options.get("frequency_penalty"),
            "presence_penalty": options.get("presence_penalty"),
        }
        return {key: value for key, value in mapped.items() if value is not None}

    @staticmethod
    def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """OpenAI messages in Ollama's terms; an assistant's tool calls (arguments as an object) and a tool
        result's call id and function name survive, so multi-turn tool use works."""
        names = {
            call.get("id"): (call.get("function") or {}).get("name")
            for m in messages
            for call in m.get("tool_calls") or []
        }
        converted = []
        for m in messages:
            message: dict[str, Any] = {"role": m.get("role", "user"), "content": text_of(m.get("content"))}
            if m.get("tool_calls"):
                message["tool_calls"] = [
                    {
                        "id": call.get("id"),
                        "type": "function",
                        "function": {
                            "name": (call.get("function") or {}).get("name", ""),
                            "arguments": _arguments_object((call.get("function") or {}).get("arguments")),
                        },
                    }
                    for call in m["tool_calls"]
                ]
            if m.get("tool_call_id"):
                message["tool_call_id"] = m["tool_call_id"]
                if names.get(m["tool_call_id"]):
                    message["tool_name"] = names[m["tool_call_id"]]
            converted.append(message)
        return converted

    def _body(
        self, model: str, messages: list[dict[str, Any]], options: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": self._messages(messages),
            "stream": stream,
            "options": self._options(options),
        }
        if options.get("tools"):
            body["tools"] = options["tools"]
        response_format = options.get("response_format") or {}
        if response_format.get("type") == "json_object":
            body["format"] = "json"
        elif response_format.get("type") == "json_schema":
            body["format"] = (response_format.get("json_schema") or {}).get("schema") or "json"
        return body

    @staticmethod
    def _tool_calls(message: dict[str, Any], first_index: int = 0) -> list[dict[str, Any]]:
        return [
            {
                "index": first_index + offset,
                "id": call.get("id") or f"call_{first_index + offset}",
                "type": "function",
                "function": {
                    "name": (call.get("function") or {}).get("name", ""),
                    "arguments": json.dumps((call.get("function") or {}).get("arguments") or {}),
                },
            }
            for offset, call in enumerate(message.get("tool_calls") or [])
        ]

    def chat(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> ChatResult:
        answer = _request(
            "POST", f"{self.base_url}/api/chat", what=self.what, json=self._body(model, messages, options, False)
        )
        message = answer.get("message") or {}
        tool_calls = [
            {key: value for key, value in call.items() if key != "index"} for call in self._tool_calls(message)
        ]
        finish_reason = "tool_calls" if tool_calls else "length" if answer.get("done_reason") == "length" else "stop"
        return ChatResult(
            content=message.get("content", ""),
            finish_reason=finish_reason,
            prompt_tokens=int(answer.get("prompt_eval_count") or 0),
            completion_tokens=int(answer.get("eval_count") or 0),
            tool_calls=tool_calls or None,
        )

    def chat_stream(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> Iterator[ChatDelta]:
        response = _stream(
            "POST", f"{self.base_url}/api/chat", what=self.what, json=self._body(model, messages, options, True)
        )
        return self._deltas(response)

    def _deltas(self, response: httpx.Response) -> Iterator[ChatDelta]:
        calls = 0
        for line in _lines(response, self.what):
            chunk = json.loads(line)
            if chunk.get("error"):
                raise BackendFailure(f"{self.what}: {chunk['error']}", retryable=False)
            message = chunk.get("message") or {}
            content = message.get("content", "")
            tool_calls = self._tool_calls(message, calls)
            calls += len(tool_calls)
            if content or tool_calls:
                yield ChatDelta(content=content, tool_calls=tool_calls or None)
            if chunk.get("done"):
                finish_reason = "tool_calls" if calls else "length" if chunk.get("done_reason") == "length" else "stop"
                yield ChatDelta(finish_reason=finish_reason)
                yield ChatDelta(usage=(int(chunk.get("prompt_eval_count") or 0), int(chunk.get("eval_count") or 0)))
                return

    def generate(self, model: str, prompt: str, system: str, options: dict[str, Any]) -> ChatResult:
        body = {"model": model, "prompt": prompt, "system": system, "stream": False, "options": self._options(options)}
        answer = _request("POST", f"{self.base_url}/api/generate", what=self.what, json=body)
        return ChatResult(
            content=answer.get("response", ""),
            prompt_tokens=int(answer.get("prompt_eval_count") or 0),
            completion_tokens=int(answer.get("eval_count") or 0),
        )

    def embed(self, model: str, inputs: list[str]) -> list[list[float]]:
        answer = _request("POST", f"{self.base_url}/api/embed", what=self.what, json={"model": model, "input": inputs})
        return answer.get("embeddings") or []

    def pull(self, model: str, *, idle_timeout_s: float | None = None) -> httpx.Response:
        """The open /api/pull stream (NDJSON progress lines); see `pull_progress`. `idle_timeout_s`
        bounds the wait for each line (a layer's download sends progress all along)."""
        import httpx

        return _stream(
            "POST",
            f"{self.base_url}/api/pull",
            what=self.what,
            json={"model": model, "stream": True},
            timeout=httpx.Timeout(idle_timeout_s, connect=CONNECT_TIMEOUT_S),
        )

    def pull_progress(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        for line in _lines(response, self.what):
            progress = json.loads(line)
            if progress.get("error"):
                raise BackendFailure(f"{self.what} pull failed: {progress['error']}", retryable=False)
            yield progress

    def delete(self, model: str) -> None:
        _request("DELETE", f"{self.base_url}/api/delete", what=self.what, json={"model": model}, timeout=LIST_TIMEOUT_S)


class OpenAICompatibleClient:
    """vLLM and OpenAI: /v1/models, /v1/chat/completions, /v1/embeddings."""

    def __init__(self, base_url: str, api_key: str | None = None, kind: str = "openai") -> None:
        base = base_url.rstrip("/")
        self.api_root = base if urlparse(base).path.endswith("/v1") else f"{base}/v1"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.what = f"{kind} {base}"

    def list_models(self) -> list[dict[str, Any]]:
        answer = _request(
            "GET", f"{self.api_root}/models", what=self.what, headers=self.headers, timeout=LIST_TIMEOUT_S
        )
        return answer.get("data") or []

    @staticmethod
    def _body(model: str, messages: list[dict[str, Any]], options: dict[str, Any], stream: bool) -> dict[str, Any]:
        body = {key: value for key, value in options.items() if value is not None}
        body.update({"model": model, "messages": messages, "stream": stream})
        if stream:  # the real usage, for accounting, whether or not the client asked for it
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream_options", None)
        return body

    def chat(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> ChatResult:
        answer = _request(
            "POST",
            f"{self.api_root}/chat/completions",
            what=self.what,
            headers=self.headers,
            json=self._body(model, messages, options, False),
        )
        choices = answer.get("choices") or [{}]
        usage = answer.get("usage") or {}
        message = choices[0].get("message") or {}
        return ChatResult(
            content=text_of(message.get("content")),
            finish_reason=choices[0].get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            tool_calls=message.get("tool_calls") or None,
            choices=answer.get("choices") or None,
            system_fingerprint=answer.get("system_fingerprint"),
        )

    def chat_stream(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> Iterator[ChatDelta]:
        response = _stream(
            "POST",
            f"{self.api_root}/chat/completions",
            what=self.what,
            headers=self.headers,
            json=self._body(model, messages, options, True),
        )
        return self._deltas(response)

    def _deltas(self, response: httpx.Response) -> Iterator[ChatDelta]:
        for line in _lines(response, self.what):
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            chunk = json.loads(data)
            if chunk.get("error"):
                raise BackendFailure(f"{self.what}: {_backend_message(data)}", retryable=False)
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if (
                    delta.get("content")
                    or delta.get("tool_calls")
                    or choice.get("finish_reason")
                    or choice.get("logprobs")
                ):
                    yield ChatDelta(
                        content=delta.get("content") or "",
                        finish_reason=choice.get("finish_reason"),
                        index=int(choice.get("index") or 0),
                        tool_calls=delta.get("tool_calls") or None,
                        logprobs=choice.get("logprobs"),
                    )
            if usage := chunk.get("usage"):
                yield ChatDelta(usage=(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)))

    def embed(self, model: str, inputs: list[str]) -> list[list[float]]:
        answer = _request(
            "POST",
            f"{self.api_root}/embeddings",
            what=self.what,
            headers=self.headers,
            json={"model": model, "input": inputs},
        )
        return [
            item.get("embedding") or [] for item in sorted(answer.get("data") or [], key=lambda d: d.get("index", 0))
        ]


class GeminiClient:
    """The Gemini REST API (v1beta): models, generateContent, streamGenerateContent, embedContent."""

    def __init__(self, base_url: str | None, api_key: str | None) -> None:
        self.base_url = (base_url or GEMINI_DEFAULT_URL).rstrip("/")
        self.headers = {"x-goog-api-key": api_key} if api_key else {}
        self.what = f"gemini {self.base_url}"

    def list_models(self) -> list[dict[str, Any]]:
        answer = _request(
            "GET", f"{self.base_url}/v1beta/models", what=self.what, headers=self.headers, timeout=LIST_TIMEOUT_S
        )
        return [
            {**model, "id": str(model.get("name", "")).removeprefix("models/")} for model in answer.get("models") or []
        ]

    @staticmethod
    def _body(messages: list[dict[str, Any]], options: dict[str, Any]) -> dict[str, Any]:
        system = "\n".join(text_of(m.get("content")) for m in messages if m.get("role") == "system")
        contents = [
            {
                "role": "model" if m.get("role") == "assistant" else "user",
                "parts": [{"text": text_of(m.get("content"))}],
            }
            for m in messages
            if m.get("role") != "system"
        ]
        stop = options.get("stop")
        json_out = (options.get("response_format") or {}).get("type") in ("json_object", "json_schema")
        config = {
            "temperature": options.get("temperature"),
            "topP": options.get("top_p"),
            "maxOutputTokens": options.get("max_tokens"),
            "seed": options.get("seed"),
            "presencePenalty": options.get("presence_penalty"),
            "frequencyPenalty": options.get("frequency_penalty"),
            "stopSequences": [stop] if isinstance(stop, str) else stop,
            "responseMimeType": "application/json" if json_out else None,
        }
        body: dict[str, Any] = {
            "contents": contents,
            "generationConfig": {k: v for k, v in config.items() if v is not None},
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    @staticmethod
    def _text(candidate: dict[str, Any]) -> str:
        return "".join(part.get("text", "") for part in (candidate.get("content") or {}).get("parts") or [])

    def chat(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> ChatResult:
        answer = _request(
            "POST",
            f"{self.base_url}/v1beta/models/{model}:generateContent",
            what=self.what,
            headers=self.headers,
            json=self._body(messages, options),
        )
        candidate = (answer.get("candidates") or [{}])[0]
        usage = answer.get("usageMetadata") or {}
        return ChatResult(
            content=self._text(candidate),
            finish_reason="length" if candidate.get("finishReason") == "MAX_TOKENS" else "stop",
            prompt_tokens=int(usage.get("promptTokenCount") or 0),
            completion_tokens=int(usage.get("candidatesTokenCount") or 0),
        )

    def chat_stream(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> Iterator[ChatDelta]:
        response = _stream(
            "POST",
            f"{self.base_url}/v1beta/models/{model}:streamGenerateContent",
            what=self.what,
            params={"alt": "sse"},
            headers=self.headers,
            json=self._body(messages, options),
        )
        return self._deltas(response)

    def _deltas(self, response: httpx.Response) -> Iterator[ChatDelta]:
        usage: dict[str, Any] = {}
        finish_reason = "stop"
        for line in _lines(response, self.what):
            if line.startswith("data:"):
                chunk = json.loads(line[5:].strip())
                candidate = (chunk.get("candidates") or [{}])[0]
                usage = chunk.get("usageMetadata") or usage  # cumulative: the last one counts
                if candidate.get("finishReason") == "MAX_TOKENS":
                    finish_reason = "length"
                text = self._text(candidate)
                if text:
                    yield ChatDelta(content=text)
        yield ChatDelta(finish_reason=finish_reason)
        yield ChatDelta(usage=(int(usage.get("promptTokenCount") or 0), int(usage.get("candidatesTokenCount") or 0)))

    def embed(self, model: str, inputs: list[str]) -> list[list[float]]:
        vectors = []
        for text in inputs:
            answer = _request(
                "POST",
                f"{self.base_url}/v1beta/models/{model}:embedContent",
                what=self.what,
                headers=self.headers,
                json={"content": {"parts": [{"text": text}]}},
            )
            vectors.append((answer.get("embedding") or {}).get("values") or [])
        return vectors


Client = OllamaClient | OpenAICompatibleClient | GeminiClient


def client_for(backend_type: str, base_url: str, api_key: str | None) -> Client:
    if backend_type == "ollama":
        return OllamaClient(base_url)
    if backend_type in ("vllm", "openai"):
        return OpenAICompatibleClient(base_url, api_key, kind=backend_type)
    if backend_type == "gemini":
        return GeminiClient(base_url, api_key)
    raise ValueError(f"no client for backend type {backend_type!r}")
