"""How the gateway's records answer over HTTP: the registry's runtime API shapes, provider configs
with their key masked, the OpenAI model list and the model-download queue's jobs. Kept apart from
data access (`registry_store.py`) and services (`registry.py`, `downloads.py`, ...) so those stay
free of response formats.
"""

from __future__ import annotations

from typing import Any

from aiplane.clock import epoch_of
from aiplane.gateway.records import (
    BackendRecord,
    BackendStateRecord,
    DownloadJobRecord,
    GroupRecord,
    ModelRecord,
    ProviderRecord,
)
from aiplane.gateway.registry_store import strategy_of, weight_of
from aiplane.gateway.schemas import SUPPORTED_BACKEND_TYPES, unsupported_type_error

TASK_TYPE = "model_download"  # what GET /queue calls a download job


def backend_view(record: BackendRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "baseUrl": record.base_url,
        "type": record.type,
        "weight": weight_of(record),
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
    }


def backend_summary(record: BackendRecord, state: BackendStateRecord | None) -> dict[str, Any]:
    """backendSummary/backendDetails: the configuration plus the last sync's runtime state."""
    error = state.error if state else None
    if record.type not in SUPPORTED_BACKEND_TYPES:
        error = unsupported_type_error(record.type)
    return {
        **backend_view(record),
        "models": list(state.models) if state else [],
        "pulledModels": list(state.pulled_models or []) if state else [],
        "error": error or "",
    }


def runtime_state(record: BackendRecord, state: BackendStateRecord | None) -> dict[str, Any]:
    summary = backend_summary(record, state)
    return {
        "id": record.id,
        "name": record.name,
        "backend": backend_view(record),
        "models": summary["models"],
        "pulledModels": summary["pulledModels"],
        "error": summary["error"],
    }


def group_view(record: GroupRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "purposeType": record.purpose_type,
        "routingStrategy": strategy_of(record),
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
    }


def model_view(record: ModelRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "model": record.model,
        "canChat": record.can_chat,
        "canEmbed": record.can_embed,
        "canPrompt": record.can_prompt,
        "canStream": record.can_stream,
        "contextLength": int(record.context_length or 0),
        "fallbacks": list(record.fallbacks or []),
        "contextWindowFallbacks": list(record.context_window_fallbacks or []),
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
    }


def openai_model(model: ModelRecord) -> dict[str, Any]:
    return {"id": model.model, "object": "model", "created": epoch_of(model.created_at), "owned_by": "aiplane"}


def openai_model_list(models: list[ModelRecord]) -> dict[str, Any]:
    """001's OpenAI list format (GET /v1/models; also what GET /openai/{chainID}/v1/models answers)."""
    return {"object": "list", "data": [openai_model(model) for model in models]}


def masked_view(record: ProviderRecord) -> dict[str, Any]:
    return {"APIKey": "****" + record.key_suffix, "Type": record.type}


def job_view(job: DownloadJobRecord) -> dict[str, Any]:
    return {
        "id": job.id,
        "taskType": TASK_TYPE,
        "modelJob": {"url": job.url, "model": job.model},
        "scheduledFor": int(job.scheduled_for),
        "validUntil": int(job.valid_until),
        "createdAt": job.created_at,
    }


def progress_view(job: DownloadJobRecord) -> dict[str, Any]:
    return {
        "status": job.progress_status or job.status,
        "digest": job.digest or "",
        "total": int(job.total or 0),
        "completed": int(job.completed or 0),
        "model": job.model,
        "baseUrl": job.url,
    }
