"""Request bodies and response shapes of the gateway routes (field names from contracts 001/003)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

SUPPORTED_BACKEND_TYPES = ("ollama", "vllm", "openai", "gemini")
PROVIDER_TYPES = ("openai", "gemini")
# LiteLLM's router strategy names; the first is the default.
ROUTING_STRATEGIES = ("simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing")
DEFAULT_ROUTING_STRATEGY = ROUTING_STRATEGIES[0]
DEFAULT_WEIGHT = 1
MAX_WEIGHT = 1000


def http_url(value: str) -> str:
    parsed = urlparse(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http(s) URL")
    return value.strip().rstrip("/")


MAX_FALLBACKS = 10
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


def unsupported_type_error(backend_type: str) -> str:
    return f"backend type {backend_type!r} is not supported; supported types: {', '.join(SUPPORTED_BACKEND_TYPES)}"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class BackendBody(_Body):
    id: str | None = None  # ignored on update: the path wins
    name: str = Field(min_length=1, max_length=200)
    base_url: str = Field(alias="baseUrl")
    type: str
    weight: int = Field(default=DEFAULT_WEIGHT, ge=0, le=MAX_WEIGHT)  # share of simple-shuffle traffic; 0 drains

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in SUPPORTED_BACKEND_TYPES:
            raise ValueError(f"unknown backend type; supported: {', '.join(SUPPORTED_BACKEND_TYPES)}")
        return value


class GroupBody(_Body):
    id: str | None = None
    name: str = Field(min_length=1, max_length=200)
    purpose_type: str = Field(default="", alias="purposeType", max_length=200)
    routing_strategy: Literal[ROUTING_STRATEGIES] = Field(default=DEFAULT_ROUTING_STRATEGY, alias="routingStrategy")  # type: ignore[valid-type]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class ModelBody(_Body):
    id: str | None = None
    model: str = Field(min_length=1, max_length=300)
    can_chat: bool = Field(default=False, alias="canChat")
    can_embed: bool = Field(default=False, alias="canEmbed")
    can_prompt: bool = Field(default=False, alias="canPrompt")
    can_stream: bool = Field(default=False, alias="canStream")
    context_length: int = Field(default=0, alias="contextLength", ge=0)
    # Model names tried, in order, when every backend of this one failed (LiteLLM's `fallbacks`), and
    # when the prompt does not fit this model's context (its `context_window_fallbacks`).
    fallbacks: list[ModelName] = Field(default_factory=list, max_length=MAX_FALLBACKS)
    context_window_fallbacks: list[ModelName] = Field(
        default_factory=list, alias="contextWindowFallbacks", max_length=MAX_FALLBACKS
    )


class ModelUpdateBody(_Body):
    """Only capabilities and the context length change; the id and the name are fixed."""

    model: str | None = None
    can_chat: bool | None = Field(default=None, alias="canChat")
    can_embed: bool | None = Field(default=None, alias="canEmbed")
    can_prompt: bool | None = Field(default=None, alias="canPrompt")
    can_stream: bool | None = Field(default=None, alias="canStream")
    context_length: int | None = Field(default=None, alias="contextLength", ge=0)
    fallbacks: list[ModelName] | None = Field(default=None, max_length=MAX_FALLBACKS)
    context_window_fallbacks: list[ModelName] | None = Field(
        default=None, alias="contextWindowFallbacks", max_length=MAX_FALLBACKS
    )


class ProviderConfigureBody(_Body):
    api_key: str = Field(alias="apiKey", min_length=1, max_length=4096)
    upsert: bool = False


class ChatMessage(_Body):
    model_config = ConfigDict(extra="allow")
    role: str = Field(min_length=1)
    content: Any = None


class ChatCompletionBody(_Body):
    model_config = ConfigDict(extra="allow")
    model: str = ""
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=16)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    stream_options: dict[str, Any] | None = None

    def options(self) -> dict[str, Any]:
        """The OpenAI parameters the request set, as a backend receives them (unset ones are left out)."""
        fields = self.model_dump(include=set(OPENAI_CHAT_OPTIONS), exclude_none=True)
        extra = {
            key: value
            for key, value in (self.model_extra or {}).items()
            if key in OPENAI_CHAT_OPTIONS and value is not None
        }
        return {**extra, **fields}

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


# What an OpenAI-compatible backend is sent besides model, messages and stream: 003's OpenAIChatRequest
# plus the OpenAI parameters its clients commonly set. Anything else in a body is not forwarded.
OPENAI_CHAT_OPTIONS = (
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "n",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "user",
    "tools",
    "tool_choice",
    "response_format",
    "logprobs",
    "top_logprobs",
    "stream_options",
    "logit_bias",
    "parallel_tool_calls",
    "max_completion_tokens",
    "reasoning_effort",
)


class EmbeddingsBody(_Body):
    model: str = ""
    input: str | list[str]

    @field_validator("input")
    @classmethod
    def _input(cls, value: str | list[str]) -> str | list[str]:
        if (isinstance(value, list) and not value) or value == "":
            raise ValueError("must not be empty")
        return value


class ExecuteBody(_Body):
    prompt: str = Field(min_length=1)
    model_name: str = ""
    model_provider: str = ""


class EmbedBody(_Body):
    text: str = Field(min_length=1)
