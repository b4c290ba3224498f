"""Mappings from a webhook path to the domain event its payloads make: validated CRUD, the
per-process cache ingest reads, and the mapping of one payload (validated, not stored)."""

from __future__ import annotations

import json
import time
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import get_or_404
from aiplane.errors import ConflictError, NotFoundError, ValidationError
from aiplane.events.extract import extract
from aiplane.events.models import MappingRecord
from aiplane.events.store import prepare_event, required_text

MAPPING_CACHE_TTL_S = 30.0
_TEXT_FIELDS = (
    "eventType",
    "eventTypeField",
    "eventSource",
    "eventSourceField",
    "aggregateType",
    "aggregateTypeField",
    "aggregateIDField",
    "eventIDField",
)
_mapping_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def validate_mapping(body: dict[str, Any]) -> dict[str, Any]:
    path = required_text(body, "path")
    mapping: dict[str, Any] = {"path": path}
    for field in _TEXT_FIELDS:
        value = body.get(field) or ""
        if not isinstance(value, str):
            raise ValidationError(f"{field} must be a string", param=field)
        mapping[field] = value
    for fixed, field in (("eventType", "eventTypeField"), ("aggregateType", "aggregateTypeField")):
        if not mapping[fixed] and not mapping[field]:
            raise ValidationError(f"{fixed} or {field} is required", param=fixed)
    if not mapping["aggregateIDField"]:
        raise ValidationError("aggregateIDField is required", param="aggregateIDField")
    version = body.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValidationError("version must be a non-negative integer", param="version")
    mapping["version"] = version
    metadata = body.get("metadataMapping") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValidationError("metadataMapping must map names to field references", param="metadataMapping")
    mapping["metadataMapping"] = metadata
    return mapping


def _save_mapping(mapping: dict[str, Any], condition: Any) -> dict[str, Any]:
    record = MappingRecord(f"MAPPING#{mapping['path']}", "META", gsi1sk=mapping["path"], body=json.dumps(mapping))
    record.save(condition=condition)
    _mapping_cache.pop(mapping["path"], None)
    return mapping


def create_mapping(body: dict[str, Any]) -> dict[str, Any]:
    mapping = validate_mapping(body)
    try:
        return _save_mapping(mapping, MappingRecord.pk.does_not_exist())
    except PutError as error:
        if refused_by_condition(error):
            raise ConflictError(f"a mapping for path {mapping['path']!r} exists", param="path") from None
        raise


def update_mapping(path: str, body: dict[str, Any]) -> dict[str, Any]:
    mapping = validate_mapping({**body, "path": path})
    try:
        return _save_mapping(mapping, MappingRecord.pk.exists())
    except PutError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"no mapping for path {path!r}", param="path") from None
        raise


def get_mapping(path: str) -> dict[str, Any]:
    record = get_or_404(MappingRecord, f"MAPPING#{path}", "META", missing=f"no mapping for path {path!r}", param="path")
    return json.loads(record.body)


def cached_mapping(path: str) -> dict[str, Any]:
    """Ingest's read: a per-process cache refreshed every 30 s, and at once by POST /sync."""
    hit = _mapping_cache.get(path)
    if hit and time.monotonic() - hit[0] < MAPPING_CACHE_TTL_S:
        return hit[1]
    mapping = get_mapping(path)
    _mapping_cache[path] = (time.monotonic(), mapping)
    return mapping


def delete_mapping(path: str) -> None:
    try:
        MappingRecord(f"MAPPING#{path}", "META").delete(condition=MappingRecord.pk.exists())
    except DeleteError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"no mapping for path {path!r}", param="path") from None
        raise
    _mapping_cache.pop(path, None)


def list_mappings() -> list[dict[str, Any]]:
    return [json.loads(record.body) for record in MappingRecord.by_path.query("MAPPINGS")]


def sync_mappings() -> int:
    """Reloads the mapping cache from storage; returns how many mappings it holds."""
    loaded = time.monotonic()
    mappings = list_mappings()
    _mapping_cache.clear()
    _mapping_cache.update({mapping["path"]: (loaded, mapping) for mapping in mappings})
    return len(mappings)


def map_raw_event(mapping: dict[str, Any], payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """The domain event a mapping makes of a webhook payload (validated, not yet stored)."""

    def field(fixed: str, reference: str) -> Any:
        return mapping.get(fixed) or (extract(mapping[reference], payload, headers) if mapping.get(reference) else None)

    def text(value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    body = {
        "event_type": text(field("eventType", "eventTypeField")),
        "event_source": text(field("eventSource", "eventSourceField")) or "",
        "aggregate_type": text(field("aggregateType", "aggregateTypeField")),
        "aggregate_id": text(extract(mapping["aggregateIDField"], payload, headers)),
        "version": mapping.get("version") or 1,
        "data": payload,
        "metadata": {
            name: extract(reference, payload, headers) for name, reference in mapping["metadataMapping"].items()
        },
    }
    if mapping.get("eventIDField"):
        body["id"] = text(extract(mapping["eventIDField"], payload, headers))
    try:
        return prepare_event(body)
    except ValidationError as error:
        raise ValidationError(
            f"the mapping for {mapping['path']!r} does not fit the payload: {error.message}", param=error.param
        ) from None
