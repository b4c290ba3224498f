"""Request bodies and response shapes of the gateway routes (field names from contracts 001/003)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

SUPPORTED_BACKEND_TYPES = ("ollama", "vllm", "openai", "gemini")
PROVIDER_TYPES = ("openai", "gemini")
# A well-formed type outside SUPPORTED_BACKEND_TYPES is stored and reported with an error state;
# anything else (empty, spaces, punctuation) is refused.
_BACKEND_TYPE_SHAPE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")


def http_url(value: str) -> str:
    parsed = urlparse(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http(s) URL")
    return value.strip().rstrip("/")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class BackendBody(_Body):
    id: str | None = None  # ignored on update: the path wins
    name: str = Field(min_length=1, max_length=200)
    base_url: str = Field(alias="baseUrl")
    type: str

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
        if not _BACKEND_TYPE_SHAPE.match(value):
            raise ValueError(f"unknown backend type; supported: {', '.join(SUPPORTED_BACKEND_TYPES)}")
        return value


class GroupBody(_Body):
    id: str | None = None
    name: str = Field(min_length=1, max_length=200)
    purpose_type: str = Field(default="", alias="purposeType", max_length=200)

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


class ModelUpdateBody(_Body):
    """Only capabilities and the context length change; the id and the name are fixed."""

    model: str | None = None
    can_chat: bool | None = Field(default=None, alias="canChat")
    can_embed: bool | None = Field(default=None, alias="canEmbed")
    can_prompt: bool | None = Field(default=None, alias="canPrompt")
    can_stream: bool | None = Field(default=None, alias="canStream")
    context_length: int | None = Field(default=None, alias="contextLength", ge=0)


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
