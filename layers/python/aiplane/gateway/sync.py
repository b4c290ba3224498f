"""The sync cycle: reconcile each backend with the models declared for it (the models sharing a
pool/group with it) and record what it serves, and its last error, as its runtime state.

- ollama: list models; queue downloads of declared models it lacks; delete models nobody
  declared; record the pulled declared models with their declared capabilities.
- vllm: the model it serves must be declared.
- openai / gemini: list with the provider's key; the declared models it offers are served.
- any other type: an error state naming the supported types.
"""

from __future__ import annotations

from typing import Any

from aiplane.gateway import downloads, providers, pulls
from aiplane.gateway.clients import BackendFailure, GeminiClient, OllamaClient, OpenAICompatibleClient
from aiplane.gateway.records import BackendRecord, ModelRecord
from aiplane.gateway.registry import write_backend_state
from aiplane.gateway.registry_store import Registry, load_registry
from aiplane.gateway.routing import normalise
from aiplane.gateway.schemas import SUPPORTED_BACKEND_TYPES, unsupported_type_error
from aiplane.observability import logger
from aiplane.outbound_policy import OutboundRefused


def sync_all() -> dict[str, str | None]:
    """The tick: requeue pulls whose worker died, then reconcile every backend."""
    pulls.recover_stale()
    registry = load_registry()
    return {backend_id: sync_backend(backend, registry) for backend_id, backend in registry.backends.items()}


def sync_one(backend_id: str) -> str | None:
    registry = load_registry()
    backend = registry.backends.get(backend_id)
    if backend is None:
        logger.info("sync request for a backend that is gone", extra={"backend": backend_id})
        return None
    return sync_backend(backend, registry)


def sync_backend(backend: BackendRecord, registry: Registry) -> str | None:
    """Reconcile one backend and write its state; returns its error (None when healthy)."""
    declared = registry.declared_models_for(backend.id)
    try:
        if backend.type not in SUPPORTED_BACKEND_TYPES:
            raise BackendFailure(unsupported_type_error(backend.type), retryable=False)
        if backend.type == "ollama":
            models, pulled = _sync_ollama(backend, declared)
        elif backend.type == "vllm":
            models, pulled = _sync_vllm(backend, declared)
        else:
            models, pulled = _sync_provider(backend, declared, registry)
    except (BackendFailure, OutboundRefused) as failure:
        write_backend_state(backend.id, error=str(failure), models=[], pulled_models=[])
        logger.warning("backend sync failed", extra={"backend": backend.id, "error": str(failure)})
        return str(failure)
    write_backend_state(backend.id, error=None, models=models, pulled_models=pulled)
    return None


def _with_tag(name: str) -> str:
    """Ollama's canonical name: `mistral` is `mistral:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _pull_status(model: ModelRecord, listed: dict[str, Any]) -> dict[str, Any]:
    details = listed.get("details") or {}
    return {
        "name": listed.get("name") or model.model,
        "model": model.model,
        "modifiedAt": listed.get("modified_at") or "",
        "size": int(listed.get("size") or 0),
        "digest": listed.get("digest") or "",
        "details": {
            "parentModel": details.get("parent_model", ""),
            "format": details.get("format", ""),
            "family": details.get("family", ""),
            "families": details.get("families") or [],
            "parameterSize": details.get("parameter_size", ""),
            "quantizationLevel": details.get("quantization_level", ""),
        },
        "canChat": model.can_chat,
        "canEmbed": model.can_embed,
        "canPrompt": model.can_prompt,
        "canStream": model.can_stream,
        "contextLength": int(model.context_length or 0),
    }


def _sync_ollama(backend: BackendRecord, declared: list[ModelRecord]) -> tuple[list[str], list[dict[str, Any]]]:
    client = OllamaClient(backend.base_url)
    present = {_with_tag(item.get("name") or item.get("model") or ""): item for item in client.list_models()}
    wanted = {_with_tag(model.model): model for model in declared}
    for name, model in wanted.items():
        if name not in present and downloads.enqueue(backend.id, backend.base_url, model.model):
            logger.info("model download queued", extra={"backend": backend.id, "model": model.model})
    for name in present:
        if name not in wanted:
            try:
                client.delete(name)
            except BackendFailure as failure:  # one stuck model must not fail the whole reconcile
                logger.warning(
                    "undeclared model not removed", extra={"backend": backend.id, "model": name, "error": str(failure)}
                )
                continue
            logger.info("undeclared model removed", extra={"backend": backend.id, "model": name})
    pulled = [_pull_status(model, present[name]) for name, model in wanted.items() if name in present]
    return [status["model"] for status in pulled], pulled


def _sync_vllm(backend: BackendRecord, declared: list[ModelRecord]) -> tuple[list[str], list[dict[str, Any]]]:
    served = [item.get("id", "") for item in OpenAICompatibleClient(backend.base_url, kind="vllm").list_models()]
    by_name = {normalise(model.model): model for model in declared}
    undeclared = [name for name in served if normalise(name) not in by_name]
    if undeclared:
        raise BackendFailure(
            f"vllm serves {', '.join(undeclared)}, which is not declared in a pool/group shared with this backend",
            retryable=False,
        )
    models = [by_name[normalise(name)] for name in served]
    return [model.model for model in models], [
        _pull_status(model, {"name": name}) for model, name in zip(models, served)
    ]


def _sync_provider(
    backend: BackendRecord, declared: list[ModelRecord], registry: Registry
) -> tuple[list[str], list[dict[str, Any]]]:
    config = registry.providers.get(backend.type)
    if config is None:
        raise BackendFailure(
            f"provider {backend.type} is not configured (POST /providers/{backend.type}/configure)", retryable=False
        )
    key = providers.api_key_for(backend, config)
    client = (
        OpenAICompatibleClient(backend.base_url, key)
        if backend.type == "openai"
        else GeminiClient(backend.base_url, key)
    )
    offered = {normalise(item.get("id", "")): item for item in client.list_models()}
    served = [model for model in declared if normalise(model.model) in offered]
    return [model.model for model in served], [_pull_status(model, {"name": model.model}) for model in served]
