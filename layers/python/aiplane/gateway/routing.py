"""Which backend serves a request for model M, and in which order the others are tried.

A backend is eligible when it shares a pool/group with a declared model whose name matches M
(after normalisation), its type is supported, its last sync left no error, it serves the model
(once a sync has listed its models). The model must have the capability asked for and, for chat,
a context length that fits the input.

The eligible backends are ordered by the routing strategy of the model's pool/group (LiteLLM's
names): `simple-shuffle` (weighted random order, the default), `least-busy` (fewest requests in
flight here), `latency-based-routing` (lowest EWMA of time to first token) or
`usage-based-routing` (fewest tokens this minute). Backends cooling down come last.

Cooldowns are shared: a backend that failed `allowed_fails` times within the failure window (counted
by every container, one atomic ADD per failure) gets a cooldown item in the registry partition, which
every container's routing snapshot reads with the rest of the registry. Load figures (in flight,
latency, tokens per minute) are this process's own: they steer its traffic only.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynamodb.exceptions import PynamoDBException

from aiplane.errors import NotFoundError, UnavailableError, ValidationError
from aiplane.gateway import providers
from aiplane.gateway.records import (
    FAILURES_PARTITION,
    REGISTRY_PARTITION,
    BackendRecord,
    CooldownRecord,
    FailureCountRecord,
    ModelRecord,
)
from aiplane.gateway.registry import cached_registry
from aiplane.gateway.registry_store import BACKEND, MODEL, Registry, strategy_of, weight_of
from aiplane.gateway.schemas import PROVIDER_TYPES, SUPPORTED_BACKEND_TYPES
from aiplane.observability import logger
from aiplane.settings import get_settings

if TYPE_CHECKING:
    from aiplane.gateway.clients import Client

CHARACTERS_PER_TOKEN = 4  # a cheap, conservative token estimate for the context-length check
LATENCY_EWMA_ALPHA = 0.3  # weight of the newest time-to-first-token sample
COOLDOWN_TTL_SLACK_S = 300  # the item outlives its cooldown a while: DynamoDB's TTL deletes late anyway

SIMPLE_SHUFFLE, LEAST_BUSY, LATENCY_BASED, USAGE_BASED = (
    "simple-shuffle",
    "least-busy",
    "latency-based-routing",
    "usage-based-routing",
)

CHAT, PROMPT, EMBED, STREAM = "canChat", "canPrompt", "canEmbed", "canStream"
_CAPABILITY_ATTRIBUTE = {CHAT: "can_chat", PROMPT: "can_prompt", EMBED: "can_embed", STREAM: "can_stream"}
_DROPPED = re.compile(r"[\s\-_.]")


def normalise(name: str) -> str:
    """Lower-case, without an `org/` prefix, a `:tag`, spaces, `-`, `_` or `.`."""
    name = name.strip().lower().rsplit("/", 1)[-1].split(":", 1)[0]
    return _DROPPED.sub("", name)


# ---------------------------------------------------------------- this process's load figures


class _Load:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.latency_s: dict[str, float] = {}
        self.tokens: dict[str, tuple[int, int]] = {}  # backend -> (minute, tokens in it)
        self.cooldowns: dict[str, float] = {}  # backend -> monotonic end, known here before the snapshot

    def tokens_this_minute(self, backend_id: str) -> int:
        minute, tokens = self.tokens.get(backend_id, (0, 0))
        return tokens if minute == int(time.time() // 60) else 0


_load = _Load()


def begin(backend_id: str) -> None:
    """A request (a whole stream, for streams) starts on the backend; `done` ends it."""
    with _load.lock:
        _load.in_flight[backend_id] = _load.in_flight.get(backend_id, 0) + 1


def done(backend_id: str) -> None:
    with _load.lock:
        _load.in_flight[backend_id] = max(0, _load.in_flight.get(backend_id, 0) - 1)


def observe_first_token(backend_id: str, seconds: float) -> None:
    with _load.lock:
        previous = _load.latency_s.get(backend_id)
        _load.latency_s[backend_id] = (
            seconds if previous is None else LATENCY_EWMA_ALPHA * seconds + (1 - LATENCY_EWMA_ALPHA) * previous
        )


def observe_tokens(backend_id: str, tokens: int) -> None:
    minute = int(time.time() // 60)
    with _load.lock:
        _load.tokens[backend_id] = (minute, _load.tokens_this_minute(backend_id) + tokens)


def reset_cooldowns() -> None:
    """Forget this process's cooldowns and load figures (tests start from a clean slate)."""
    with _load.lock:
        _load.in_flight.clear()
        _load.latency_s.clear()
        _load.tokens.clear()
        _load.cooldowns.clear()


# ---------------------------------------------------------------- shared cooldowns


def record_failure(backend_id: str, reason: str, *, cool_now: bool = False) -> bool:
    """Count a failure of the backend for every container; cool it down once it failed `allowed_fails`
    times in the current window (at once when `cool_now`, as for a 429). True when it is now cooling down."""
    settings = get_settings()
    window_s = settings.gateway_failure_window_s
    window = int(time.time() // window_s)
    fails = 1
    if not cool_now:
        counter = FailureCountRecord(FAILURES_PARTITION, f"{backend_id}#{window}")
        try:
            counter.update(
                actions=[
                    FailureCountRecord.fails.add(1),
                    FailureCountRecord.expires_at_epoch.set(int((window + 2) * window_s)),
                ]
            )
            fails = int(counter.fails)
        except PynamoDBException as error:  # counting must not turn a failover into an error
            logger.warning("backend failure not counted", extra={"backend": backend_id, "error": str(error)})
    if cool_now or fails >= settings.gateway_allowed_fails:
        cool_down(backend_id, reason)
        return True
    return False


def cool_down(backend_id: str, reason: str = "") -> None:
    cooldown_s = get_settings().gateway_cooldown_s
    with _load.lock:
        _load.cooldowns[backend_id] = time.monotonic() + cooldown_s
    until = time.time() + cooldown_s
    try:
        CooldownRecord(
            REGISTRY_PARTITION,
            f"COOLDOWN#{backend_id}",
            backend_id=backend_id,
            until=until,
            reason=reason[:300] or None,
            expires_at_epoch=int(until + COOLDOWN_TTL_SLACK_S),
        ).save()
    except PynamoDBException as error:
        logger.warning("cooldown not shared", extra={"backend": backend_id, "error": str(error)})
    logger.info("backend cooling down", extra={"backend": backend_id, "seconds": cooldown_s, "reason": reason})


def cooling_down(backend_id: str, registry: Registry | None = None) -> bool:
    """Cooling down here, or by the shared item in the routing snapshot (another container's finding)."""
    with _load.lock:
        until = _load.cooldowns.get(backend_id)
        if until is not None and until <= time.monotonic():
            del _load.cooldowns[backend_id]
            until = None
    if until is not None:
        return True
    shared = (registry or cached_registry()).cooldowns.get(backend_id)
    return shared is not None and float(shared.until) > time.time()


# ---------------------------------------------------------------- eligibility and order


@dataclass(frozen=True)
class Target:
    """One backend able to serve the request, with the model name to send it."""

    backend: BackendRecord
    model: ModelRecord
    client: Client


def estimate_tokens(text: str) -> int:
    return len(text) // CHARACTERS_PER_TOKEN + 1


def targets_for(
    model_name: str,
    capability: str,
    *,
    input_text: str = "",
    provider: str = "",
    registry: Registry | None = None,
) -> list[Target]:
    """Eligible backends, in the order to try them; raises a 4xx/503 domain error when there are none."""
    registry = registry or cached_registry()
    wanted = normalise(model_name)
    declared = [m for m in registry.models.values() if normalise(m.model) == wanted]
    if not declared:
        raise NotFoundError(f"model {model_name!r} is not declared", code="model_not_found", param="model")
    capable = [m for m in declared if getattr(m, _CAPABILITY_ATTRIBUTE[capability])]
    if not capable:
        raise ValidationError(
            f"model {model_name!r} does not have the capability {capability}", code="capability_mismatch", param="model"
        )
    if input_text:
        tokens = estimate_tokens(input_text)
        fitting = [m for m in capable if not m.context_length or m.context_length >= tokens]
        if not fitting:
            raise ValidationError(
                f"the input (about {tokens} tokens) exceeds the context length of model {model_name!r}",
                code="context_length_exceeded",
                param="messages",
            )
        capable = fitting

    # Here, not at the top: the model routes only look models up, and the clients (httpx) weigh on their cold start.
    from aiplane.gateway.clients import client_for

    targets: list[Target] = []
    seen: set[str] = set()
    strategy = _strategy(registry, capable)
    for model in capable:
        groups = registry.groups_of(MODEL, model.id)
        backend_ids = sorted(
            {m.member_id for m in registry.memberships if m.member_kind == BACKEND and m.group_id in groups}
        )
        for backend_id in backend_ids:
            backend = registry.backends.get(backend_id)
            if backend is None or backend_id in seen or not _serves(registry, backend, model, provider):
                continue
            seen.add(backend_id)
            api_key = (
                providers.api_key_for(backend, registry.providers.get(backend.type))
                if backend.type in PROVIDER_TYPES
                else None
            )
            targets.append(Target(backend, model, client_for(backend.type, backend.base_url, api_key)))
    if not targets:
        raise UnavailableError(
            f"no backend is available for model {model_name!r}: none shares a pool/group with it, or all are in error",
            code="no_backend_available",
            param="model",
        )
    return ordered(targets, strategy, registry)


def declared_model(name: str, registry: Registry | None = None) -> ModelRecord:
    """GET /v1/models/{model}: the declared model of that exact name, else the oldest whose name routes to it."""
    models: list[ModelRecord] = sorted((registry or cached_registry()).models.values(), key=lambda m: m.created_at)
    match = next((m for m in models if m.model == name), None) or next(
        (m for m in models if normalise(m.model) == normalise(name)), None
    )
    if match is None:
        raise NotFoundError(f"model {name!r} is not declared", code="model_not_found", param="model")
    return match


def fallbacks_of(model_name: str, *, context_window: bool = False, registry: Registry | None = None) -> list[str]:
    """The fallback model names declared on the models named `model_name` (in declaration order)."""
    registry = registry or cached_registry()
    wanted = normalise(model_name)
    names: list[str] = []
    for model in sorted(registry.models.values(), key=lambda m: m.created_at):
        if normalise(model.model) == wanted:
            for name in (model.context_window_fallbacks if context_window else model.fallbacks) or []:
                if name not in names:
                    names.append(str(name))
    return names


def _strategy(registry: Registry, models: list[ModelRecord]) -> str:
    """The strategy of the oldest pool/group holding one of the models."""
    groups = sorted(
        (registry.groups[g] for m in models for g in registry.groups_of(MODEL, m.id) if g in registry.groups),
        key=lambda group: group.created_at,
    )
    return strategy_of(groups[0]) if groups else SIMPLE_SHUFFLE


def ordered(targets: list[Target], strategy: str, registry: Registry) -> list[Target]:
    """Targets in the order to try them: by the strategy, ties broken at random, cooling ones last."""
    with _load.lock:

        def load_of(backend: BackendRecord) -> float:
            if strategy == LEAST_BUSY:
                return _load.in_flight.get(backend.id, 0)
            if strategy == LATENCY_BASED:
                return _load.latency_s.get(backend.id, 0.0)  # unmeasured first, so it gets measured
            if strategy == USAGE_BASED:
                return _load.tokens_this_minute(backend.id)
            weight = weight_of(backend)  # Efraimidis-Spirakis: a weighted random order in one sort
            return -math.pow(random.random(), 1 / weight) if weight > 0 else math.inf

        keys = {target.backend.id: (load_of(target.backend), random.random()) for target in targets}
    return sorted(targets, key=lambda target: (cooling_down(target.backend.id, registry), keys[target.backend.id]))


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
