"""The one seam between task chains and the LLM gateway.

Chains reach models only through `LLMPort`. By default that is `GatewayLLM`: the runtime's own
gateway (pools/groups, capability fit, failover), called in-process. Setting
AIPLANE_CHAINS_LLM_BASE_URL points chains at an external OpenAI-compatible endpoint instead
(`OpenAICompatibleLLM`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from aiplane.data.pagination import MAX_LIMIT
from aiplane.errors import BadGatewayError, GatewayTimeoutError, NotFoundError, UnavailableError, ValidationError
from aiplane.gateway import metering, registry
from aiplane.gateway.inference import chat_completion, default_embed_model, default_task_model, embed
from aiplane.gateway.schemas import ChatCompletionBody
from aiplane.identity.principal import Principal

# The base URL of an OpenAI-compatible endpoint that serves chat and embeddings.
LLM_BASE_URL_VARIABLE = "AIPLANE_CHAINS_LLM_BASE_URL"
LLM_API_KEY_VARIABLE = "AIPLANE_CHAINS_LLM_API_KEY"
DEFAULT_TIMEOUT_S = 60.0


def llm_base_url() -> str:
    return os.environ[LLM_BASE_URL_VARIABLE].rstrip("/")


@dataclass(frozen=True)
class ModelChoice:
    """Candidates in order of preference: `model` then `models[]`, `provider` then `providers[]`."""

    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    temperature: float | None = None


class LLMPort(Protocol):
    def chat(self, messages: list[dict[str, Any]], choice: ModelChoice, *, tools: list[dict[str, Any]] | None = None,
             timeout_s: float | None = None) -> dict[str, Any]:
        """The assistant message (`role`, `content`, optional `tool_calls`) and `usage`, under `message`/`usage`."""

    def prompt(self, text: str, choice: ModelChoice, *, system: str = "", timeout_s: float | None = None) -> str:
        """The model's reply to one prompt."""

    def embed(self, text: str, choice: ModelChoice, *, timeout_s: float | None = None) -> list[float]:
        """The embedding vector of `text`."""

    def models(self) -> list[dict[str, Any]]:
        """The models the gateway serves, as OpenAI `/v1/models` items."""


class OpenAICompatibleLLM:
    """LLMPort over HTTP. The first candidate model is asked; the gateway behind the URL routes."""

    def _post(self, path: str, body: dict[str, Any] | None, timeout_s: float | None) -> dict[str, Any]:
        headers = {}
        if api_key := os.environ.get(LLM_API_KEY_VARIABLE):
            headers["Authorization"] = f"Bearer {api_key}"
        try:
            response = httpx.request("POST" if body is not None else "GET", f"{llm_base_url()}{path}", json=body,
                                     headers=headers, timeout=timeout_s or DEFAULT_TIMEOUT_S)
        except httpx.TimeoutException:
            raise GatewayTimeoutError("the LLM backend did not answer in time") from None
        except httpx.HTTPError as error:
            raise BadGatewayError(f"the LLM backend is unreachable: {error}") from None
        if response.status_code >= 400:
            raise BadGatewayError(f"the LLM backend answered {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError:
            raise BadGatewayError("the LLM backend answered with invalid JSON") from None

    @staticmethod
    def _model_fields(choice: ModelChoice) -> dict[str, Any]:
        fields: dict[str, Any] = {"model": choice.models[0] if choice.models else ""}
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

    def prompt(self, text, choice, *, system="", timeout_s=None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        return str(self.chat(messages, choice, timeout_s=timeout_s)["message"].get("content") or "")

    def embed(self, text, choice, *, timeout_s=None):
        answer = self._post("/v1/embeddings", {"model": choice.models[0] if choice.models else "", "input": text}, timeout_s)
        try:
            return [float(x) for x in answer["data"][0]["embedding"]]
        except (KeyError, IndexError, TypeError, ValueError):
            raise BadGatewayError("the LLM backend answered without an embedding") from None


    def models(self):
        data = self._post("/v1/models", None, None).get("data")
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


class GatewayLLM:
    """LLMPort over the runtime's gateway. Candidate models are tried in order of preference;
    a candidate the gateway does not know or cannot serve gives way to the next one. Its chat calls are
    metered for `caller` (the chain's actor) like direct calls: its key's, user's and model's limits apply."""

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
        def ask(model: str) -> dict[str, Any]:
            body = {"model": model, "messages": messages, "temperature": choice.temperature}
            if tools:
                body["tools"] = tools
            validated = ChatCompletionBody.model_validate(body)
            return metering.metered_completion(self.caller, validated, lambda: chat_completion(validated))

        answer = self._first_served(choice, ask)
        return {"message": answer["choices"][0]["message"], "usage": answer.get("usage") or {}, "model": answer["model"]}

    def prompt(self, text, choice, *, system="", timeout_s=None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        return str(self.chat(messages, choice, timeout_s=timeout_s)["message"].get("content") or "")

    def embed(self, text, choice, *, timeout_s=None):
        embed_choice = choice if choice.models else ModelChoice(models=(default_embed_model(),))
        return [float(x) for x in self._first_served(embed_choice, lambda model: embed([text], model)[0])]

    def models(self):
        return registry.openai_model_list(registry.list_models(MAX_LIMIT, None))["data"]


def default_llm(caller: Principal | None = None) -> LLMPort:
    return OpenAICompatibleLLM() if os.environ.get(LLM_BASE_URL_VARIABLE) else GatewayLLM(caller)
