"""The one seam between task chains and the LLM gateway.

Chains reach models only through `LLMPort`. By default that is `GatewayLLM`: the runtime's own
gateway (pools/groups, capability fit, failover), called in-process. Setting
AIPLANE_CHAINS_LLM_BASE_URL points chains at an external OpenAI-compatible endpoint instead
(`OpenAICompatibleLLM`).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from aiplane import outbound, outbound_policy
from aiplane.data.pagination import MAX_LIMIT
from aiplane.errors import BadGatewayError, NotFoundError, UnavailableError, ValidationError
from aiplane.gateway import metering, registry_store, views
from aiplane.gateway.inference import (
    chat_completion,
    chat_completion_stream,
    default_embed_model,
    default_task_model,
    embed,
)
from aiplane.gateway.schemas import ChatCompletionBody
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings

DEFAULT_TIMEOUT_S = 60.0


def llm_base_url() -> str:
    """The OpenAI-compatible endpoint (chat and embeddings) chains call instead of the gateway."""
    return get_settings().chains_llm_base_url.rstrip("/")


@dataclass(frozen=True)
class ModelChoice:
    """Candidates in order of preference: `model` then `models[]`, `provider` then `providers[]`."""

    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    temperature: float | None = None


class LLMPort(Protocol):
    def chat(
        self,
        messages: list[dict[str, Any]],
        choice: ModelChoice,
        *,
        tools: list[dict[str, Any]] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """The assistant message (`role`, `content`, optional `tool_calls`) and `usage`, under `message`/`usage`."""

    def chat_stream(
        self,
        messages: list[dict[str, Any]],
        choice: ModelChoice,
        *,
        tools: list[dict[str, Any]] | None = None,
        timeout_s: float | None = None,
    ) -> Generator[dict[str, Any], None, dict[str, Any]]:
        """`chat`, streamed: yields the deltas (`content`, `tool_calls`) as they arrive, returns what `chat` returns."""

    def prompt(self, text: str, choice: ModelChoice, *, system: str = "", timeout_s: float | None = None) -> str:
        """The model's reply to one prompt."""

    def embed(self, text: str, choice: ModelChoice, *, timeout_s: float | None = None) -> list[float]:
        """The embedding vector of `text`."""

    def models(self) -> list[dict[str, Any]]:
        """The models the gateway serves, as OpenAI `/v1/models` items."""


class OpenAICompatibleLLM:
    """LLMPort over HTTP. The first candidate model is asked; the gateway behind the URL routes."""

    @staticmethod
    def _headers() -> dict[str, str]:
        api_key = get_settings().chains_llm_api_key
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _post(self, path: str, body: dict[str, Any] | None, timeout_s: float | None) -> dict[str, Any]:
        try:
            response = outbound.send(
                outbound_policy.BACKENDS,
                "POST" if body is not None else "GET",
                f"{llm_base_url()}{path}",
                json=body,
                headers=self._headers(),
                timeout=timeout_s or DEFAULT_TIMEOUT_S,
            )
            return outbound.json_of(response)
        except outbound.OutboundError as error:
            raise outbound.gateway_error(error, "the LLM backend") from None

    @staticmethod
    def _model_fields(choice: ModelChoice) -> dict[str, Any]:
        fields: dict[str, Any] = {"model": choice.models[0] if choice.models else ""}
        if len(choice.models) > 1:  # LiteLLM's (and this gateway's) per-request fallbacks
            fields["fallbacks"] = list(choice.models[1:])
        if choice.temperature is not None:
            fields["temperature"] = choice.temperature
        return fields

    def chat(self, messages, choice, *, tools=None, timeout_s=None):
        body = {**self._model_fields(choice), "messages": messages}
        if tools:
            body["tools"] = tools
        answer = self._post("/v1/chat/completions", body, timeout_s)
        try:
            message = answer["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise BadGatewayError("the LLM backend answered without a message") from None
        return {"message": message, "usage": answer.get("usage") or {}, "model": answer.get("model", body["model"])}

    def chat_stream(self, messages, choice, *, tools=None, timeout_s=None):
        body = {
            **self._model_fields(choice),
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = tools
        try:
            response = outbound.open_stream(
                outbound_policy.BACKENDS,
                "POST",
                f"{llm_base_url()}/v1/chat/completions",
                json=body,
                headers=self._headers(),
                timeout=timeout_s or DEFAULT_TIMEOUT_S,
            )
            try:
                return (yield from assembled(outbound.lines(response), body["model"]))
            finally:
                response.close()
        except outbound.OutboundError as error:
            raise outbound.gateway_error(error, "the LLM backend") from None

    def prompt(self, text, choice, *, system="", timeout_s=None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        return str(self.chat(messages, choice, timeout_s=timeout_s)["message"].get("content") or "")

    def embed(self, text, choice, *, timeout_s=None):
        answer = self._post(
            "/v1/embeddings", {"model": choice.models[0] if choice.models else "", "input": text}, timeout_s
        )
        try:
            return [float(x) for x in answer["data"][0]["embedding"]]
        except (KeyError, IndexError, TypeError, ValueError):
            raise BadGatewayError("the LLM backend answered without an embedding") from None

    def models(self):
        data = self._post("/v1/models", None, None).get("data")
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


class GatewayLLM:
    """LLMPort over the runtime's gateway. A chat goes to the first candidate model, the others are its
    fallbacks (the gateway's: after a failed, unknown or overloaded model, with the model's declared ones),
    on the backends of the candidate providers only, in their order. An embedding tries the models in order.
    Its chats, streamed or not, are metered for `caller` (the chain's actor) like direct calls: its key's,
    user's and model's limits apply."""

    def __init__(self, caller: Principal | None = None) -> None:
        self.caller = caller

    def _first_served(self, choice: ModelChoice, call: Any) -> Any:
        candidates = list(choice.models) or [default_task_model()]
        for index, model in enumerate(candidates):
            try:
                return call(model)
            except (NotFoundError, UnavailableError, ValidationError):
                if index == len(candidates) - 1:
                    raise

    def chat(self, messages, choice, *, tools=None, timeout_s=None):
        body = _chat_body(messages, choice, tools)
        answer = metering.metered_completion(
            self.caller, body, lambda: chat_completion(body, providers=choice.providers)
        )
        return {
            "message": answer["choices"][0]["message"],
            "usage": answer.get("usage") or {},
            "model": answer["model"],
        }

    def chat_stream(self, messages, choice, *, tools=None, timeout_s=None):
        body = _chat_body(messages, choice, tools, stream=True)
        lines = metering.metered_stream(
            self.caller, body, lambda on_usage: chat_completion_stream(body, on_usage, providers=choice.providers)
        )
        return (yield from assembled(lines, body.model))

    def prompt(self, text, choice, *, system="", timeout_s=None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        return str(self.chat(messages, choice, timeout_s=timeout_s)["message"].get("content") or "")

    def embed(self, text, choice, *, timeout_s=None):
        embed_choice = choice if choice.models else ModelChoice(models=(default_embed_model(),))
        return [float(x) for x in self._first_served(embed_choice, lambda model: embed([text], model)[0])]

    def models(self):
        return views.openai_model_list(registry_store.list_models(MAX_LIMIT, None))["data"]


def _chat_body(
    messages: list[dict[str, Any]], choice: ModelChoice, tools: list[dict[str, Any]] | None, *, stream: bool = False
) -> ChatCompletionBody:
    first, *fallbacks = choice.models or (default_task_model(),)
    body: dict[str, Any] = {
        "model": first,
        "messages": messages,
        "temperature": choice.temperature,
        "fallbacks": fallbacks,
    }
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    if tools:
        body["tools"] = tools
    return ChatCompletionBody.model_validate(body)


def assembled(lines: Iterator[str], model: str) -> Generator[dict[str, Any], None, dict[str, Any]]:
    """Read an OpenAI chunk stream (SSE lines): yield each delta's `content`/`tool_calls` as it arrives,
    and return the whole message (tool-call pieces joined by index), its usage and the model."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    for line in lines:
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        chunk = json.loads(line[5:])
        if "error" in chunk:
            raise BadGatewayError(f"the model's stream broke: {(chunk['error'] or {}).get('message', '')}")
        model = chunk.get("model") or model
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = {
                key: value
                for key, value in (choice.get("delta") or {}).items()
                if key in ("content", "tool_calls") and value
            }
            if not delta or choice.get("index", 0) != 0:
                continue
            content.append(delta.get("content") or "")
            for piece in delta.get("tool_calls") or []:
                call = calls.setdefault(
                    int(piece.get("index", len(calls))),
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                call["id"] = piece.get("id") or call["id"]
                call["type"] = piece.get("type") or call["type"]
                function = piece.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                arguments = function.get("arguments") or ""
                call["function"]["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)
            yield delta
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return {"message": message, "usage": usage, "model": model}


def default_llm(caller: Principal | None = None) -> LLMPort:
    return OpenAICompatibleLLM() if get_settings().chains_llm_base_url else GatewayLLM(caller)
