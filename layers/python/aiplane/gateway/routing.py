"""Which backend serves a request for model M.

A backend is eligible when it shares a pool/group with a declared model whose name matches M
(after normalisation), its type is supported, its last sync left no error, it serves the model
(once a sync has listed its models) and it is not cooling down after a failure. The model must
have the capability asked for and, for chat, a context length that fits the input.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from aiplane.errors import NotFoundError, UnavailableError, ValidationError
from aiplane.gateway import providers
from aiplane.gateway.clients import Client, client_for
from aiplane.gateway.records import BackendRecord, ModelRecord
from aiplane.gateway.registry import BACKEND, MODEL, Registry, cached_registry
from aiplane.gateway.schemas import PROVIDER_TYPES, SUPPORTED_BACKEND_TYPES

COOLDOWN_S = 15.0
CHARACTERS_PER_TOKEN = 4  # a cheap, conservative token estimate for the context-length check

CHAT, PROMPT, EMBED, STREAM = "canChat", "canPrompt", "canEmbed", "canStream"
_CAPABILITY_ATTRIBUTE = {CHAT: "can_chat", PROMPT: "can_prompt", EMBED: "can_embed", STREAM: "can_stream"}
_DROPPED = re.compile(r"[\s\-_.]")

_cooldowns: dict[str, float] = {}
_cooldown_lock = threading.Lock()


def normalise(name: str) -> str:
    """Lower-case, without an `org/` prefix, a `:tag`, spaces, `-`, `_` or `.`."""
    name = name.strip().lower().rsplit("/", 1)[-1].split(":", 1)[0]
    return _DROPPED.sub("", name)


def cool_down(backend_id: str) -> None:
    with _cooldown_lock:
        _cooldowns[backend_id] = time.monotonic() + COOLDOWN_S


def cooling_down(backend_id: str) -> bool:
    with _cooldown_lock:
        until = _cooldowns.get(backend_id)
        if until is not None and until <= time.monotonic():
            del _cooldowns[backend_id]
            return False
        return until is not None


def reset_cooldowns() -> None:
    with _cooldown_lock:
        _cooldowns.clear()


@dataclass(frozen=True)
class Target:
    """One backend able to serve the request, with the model name to send it."""

    backend: BackendRecord
    model: ModelRecord
    client: Client


def estimate_tokens(text: str) -> int:
    return len(text) // CHARACTERS_PER_TOKEN + 1


def targets_for(
    model_name: str, capability: str, *, input_text: str = "", provider: str = "", registry: Registry | None = None,
) -> list[Target]:
    """Eligible backends, in a stable order; raises a 4xx/503 domain error when there are none."""
    registry = registry or cached_registry()
    wanted = normalise(model_name)
    declared = [m for m in registry.models.values() if normalise(m.model) == wanted]
    if not declared:
        raise NotFoundError(f"model {model_name!r} is not declared", code="model_not_found", param="model")
    capable = [m for m in declared if getattr(m, _CAPABILITY_ATTRIBUTE[capability])]
    if not capable:
        raise ValidationError(f"model {model_name!r} does not have the capability {capability}", code="capability_mismatch", param="model")
    if input_text:
        tokens = estimate_tokens(input_text)
        fitting = [m for m in capable if not m.context_length or m.context_length >= tokens]
        if not fitting:
            raise ValidationError(
                f"the input (about {tokens} tokens) exceeds the context length of model {model_name!r}",
                code="context_length_exceeded", param="messages",
            )
        capable = fitting

    targets: list[Target] = []
    seen: set[str] = set()
    for model in capable:
        groups = registry.groups_of(MODEL, model.id)
        backend_ids = sorted({m.member_id for m in registry.memberships if m.member_kind == BACKEND and m.group_id in groups})
        for backend_id in backend_ids:
            backend = registry.backends.get(backend_id)
            if backend is None or backend_id in seen or not _serves(registry, backend, model, provider):
                continue
            seen.add(backend_id)
            api_key = providers.api_key_for(backend, registry.providers.get(backend.type)) if backend.type in PROVIDER_TYPES else None
            targets.append(Target(backend, model, client_for(backend.type, backend.base_url, api_key)))
    if not targets:
        raise UnavailableError(
            f"no backend is available for model {model_name!r}: none shares a pool/group with it, or all are in error",
            code="no_backend_available", param="model",
        )
    targets.sort(key=lambda target: (cooling_down(target.backend.id), target.backend.created_at))
    return targets


def _serves(registry: Registry, backend: BackendRecord, model: ModelRecord, provider: str) -> bool:
    if backend.type not in SUPPORTED_BACKEND_TYPES or (provider and backend.type != provider.strip().lower()):
        return False
    if backend.type in PROVIDER_TYPES and backend.type not in registry.providers:
        return False
    state = registry.states.get(backend.id)
    if state is None:
        return True  # not synced yet: let the request try it (failover covers a miss)
    if state.error:
        return False
    wanted = normalise(model.model)
    return any(normalise(served) == wanted for served in state.models)
