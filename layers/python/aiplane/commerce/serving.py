"""Served models: upload to S3, the model registry, predictions and their metrics.

An upload stores the artifact in the artifacts bucket, then creates the model and counts its
bytes and the upload in one transaction (conditional on the quota); if the transaction refuses,
the artifact is removed again, so nothing is left half-written. Artifacts too large for Lambda go
straight to S3 through a presigned POST (`start_upload`); `complete_upload` writes the model once
the object is there with the announced size. A model starts `loading`; the
GPU fleet calls `mark_serving` once an instance serves it, and predictions are forwarded there.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import IO, Any

from pynamodb.exceptions import DeleteError, TransactWriteError

from aiplane import outbound, outbound_policy
from aiplane.clock import rfc3339
from aiplane.commerce import quota
from aiplane.commerce.formats import format_named, resolve_format
from aiplane.commerce.records import (
    ALL_MODELS,
    MODEL_FAILED,
    MODEL_LOADING,
    MODEL_READY,
    PENDING_MODEL_UPLOADS,
    CounterRecord,
    ModelRecord,
    ModelUploadRecord,
    PredictionRecord,
    UsageRecord,
    atomic_write,
    everyone_shard,
    model_key,
    model_owner_key,
    newest_of_everyone,
    ready_keys,
    write_with_retries,
)
from aiplane.commerce.scope import require_owner
from aiplane.commerce.windows import DAILY, HOURLY, current_window
from aiplane.data import presigned
from aiplane.data.aws import client
from aiplane.data.conditions import ITEM_CONDITION_FAILED, cancellation_codes, refused_by_condition
from aiplane.data.models import get_or_404, get_or_none
from aiplane.data.pagination import timestamp_cursor
from aiplane.errors import (
    BadGatewayError,
    ConflictError,
    GatewayTimeoutError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from aiplane.gpufarm import status_updates
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings
from aiplane_shared import resources

LOADING, READY, FAILED = MODEL_LOADING, MODEL_READY, MODEL_FAILED
DEFAULT_VERSION = "1.0.0"
PREDICT_TIMEOUT_S = 30.0
PREDICTION_RETENTION_S = 7 * 24 * 3600
LATENCY_SAMPLES = 1000  # percentiles come from the most recent predictions
MAX_TEXT = 128
MAX_REASON = 1024
UPLOAD_SK = "UPLOAD"
ARTIFACT_CONTENT_TYPE = "application/octet-stream"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def artifact_bucket() -> str:
    return get_settings().bucket(resources.ARTIFACT_BUCKET.name)


def _text(value: str | None, param: str, default: str | None = None) -> str | None:
    text = (value or "").strip() or default
    if text is not None and len(text) > MAX_TEXT:
        raise ValidationError(f"{param} may have at most {MAX_TEXT} characters", param=param)
    return text


def upload_model(owner_id: str, filename: str | None, content: IO[bytes], size: int, **fields: Any) -> ModelRecord:
    record = _new_model(owner_id, filename, size, **fields)
    client("s3").upload_fileobj(content, artifact_bucket(), record.artifact_key)
    _create_counted_or_discard(record)
    status_updates.model_changed(record)
    return record


def start_upload(
    owner_id: str, filename: str | None, size: int, sha256: str | None = None, **fields: Any
) -> tuple[ModelRecord, dict[str, Any]]:
    """The model to be and the presigned POST for its artifact; nothing is listed or counted until `complete_upload`."""
    sha256 = presigned.valid_sha256(sha256)
    record = _new_model(owner_id, filename, size, **fields)
    expires_at_epoch = int(time.time()) + presigned.UPLOAD_EXPIRY_S
    ModelUploadRecord(
        record.pk,
        UPLOAD_SK,
        owner_id=owner_id,
        model=json.dumps(record.to_simple_dict()),
        sha256=sha256,
        expires_at_epoch=expires_at_epoch,
        gsi1sk=presigned.expiry_sort_key(expires_at_epoch, record.model_id),
    ).save()
    return record, presigned.upload_form(artifact_bucket(), record.artifact_key, size, ARTIFACT_CONTENT_TYPE, sha256)


def complete_upload(principal: Principal, model_id: str) -> ModelRecord:
    pending = get_or_none(ModelUploadRecord, model_key(model_id), UPLOAD_SK, consistent_read=True)
    if pending is None or pending.expires_at_epoch < time.time():
        raise NotFoundError(f"no pending upload for model {model_id}")
    require_owner(principal, pending.owner_id, "model")
    record = ModelRecord()
    record.from_simple_dict(json.loads(pending.model))
    uploaded = presigned.uploaded_object(artifact_bucket(), record.artifact_key)
    if uploaded is None:
        raise ConflictError(
            "the artifact has not been uploaded yet: POST it to the upload URL first", code="UPLOAD_INCOMPLETE"
        )
    size, record.artifact_version = uploaded
    if pending.sha256:
        try:
            presigned.check_sha256(
                artifact_bucket(),
                record.artifact_key,
                pending.sha256,
                version_id=record.artifact_version,
                code="CHECKSUM_MISMATCH",
            )
        except ValidationError:  # removed; the upload stays pending (the form may be used again)
            _delete_artifact(record)
            raise
    pending.delete()
    if size != record.size_bytes:  # S3's policy makes this unreachable; never trust it blindly
        _delete_artifact(record)
        raise ValidationError(
            f"the uploaded artifact has {size} bytes, not the {int(record.size_bytes)} announced", param="size"
        )
    presigned.mark_completed(artifact_bucket(), record.artifact_key, record.artifact_version)
    _create_counted_or_discard(record)
    status_updates.model_changed(record)
    return record


def sweep_abandoned_uploads(now: float | None = None) -> int:
    """Remove presigned model uploads past their expiry (never completed): any uploaded artifact,
    then the record. Nothing was counted against the quota for them. Returns how many were removed."""
    swept = 0
    bound = presigned.abandoned_before(time.time() if now is None else now)
    for pending in ModelUploadRecord.by_expiry.query(PENDING_MODEL_UPLOADS, ModelUploadRecord.gsi1sk < bound):
        model = ModelRecord()
        model.from_simple_dict(json.loads(pending.model))
        _delete_artifact(model)
        try:
            pending.delete(condition=ModelUploadRecord.gsi1sk == pending.gsi1sk)
        except DeleteError:
            continue
        swept += 1
    return swept


def _create_counted_or_discard(record: ModelRecord) -> None:
    try:
        _create_counted(record)
    except Exception:
        _delete_artifact(record)
        raise


def _delete_artifact(record: ModelRecord) -> None:
    presigned.delete_object(artifact_bucket(), record.artifact_key)


def _new_model(
    owner_id: str,
    filename: str | None,
    size: int,
    *,
    name: str | None,
    declared_format: str | None,
    framework: str | None,
    version: str | None,
    gpu_required: bool,
    gpu_type: str | None,
) -> ModelRecord:
    if not filename:
        raise ValidationError("model (the model file) is required", param="model")
    if size <= 0:
        raise ValidationError("the model file is empty", param="model")
    model_format = resolve_format(filename, declared_format)
    quota.precheck_upload(owner_id, size)
    model_id = str(uuid.uuid4())
    now = rfc3339(datetime.now(UTC))
    safe_name = _UNSAFE_NAME.sub("_", filename.rsplit("/", 1)[-1])
    record = ModelRecord(
        model_key(model_id),
        gsi1pk=model_owner_key(owner_id),
        gsi1sk=f"{now}#{model_id}",
        gsi2pk=everyone_shard(ALL_MODELS),
        gsi2sk=f"{now}#{model_id}",
        model_id=model_id,
        owner_id=owner_id,
        name=_text(name, "name", filename.rsplit("/", 1)[-1].rsplit(".", 1)[0] or model_id),
        format=model_format.format,
        framework=_text(framework, "framework", model_format.framework),
        version=_text(version, "version", DEFAULT_VERSION),
        gpu_required=gpu_required,
        gpu_type=_text(gpu_type, "gpu_type"),
        status=LOADING,
        artifact_key=f"models/{owner_id}/{model_id}/{safe_name}",
        size_bytes=size,
        created_at=now,
        updated_at=now,
    )
    return record


def _create_counted(record: ModelRecord) -> None:
    windows = [current_window(HOURLY), current_window(DAILY)]

    def write() -> None:
        with atomic_write() as transaction:
            transaction.save(record, condition=ModelRecord.pk.does_not_exist())
            transaction.update(
                quota.usage_record(record.owner_id),
                actions=[UsageRecord.used_bytes.add(record.size_bytes)],
                condition=UsageRecord.used_bytes.does_not_exist()
                | (UsageRecord.used_bytes <= quota.STORAGE_LIMIT_BYTES - record.size_bytes),
            )
            for window in windows:
                transaction.update(
                    quota.upload_counter(record.owner_id, window),
                    actions=[CounterRecord.value.add(1), CounterRecord.expires_at_epoch.set(window.retention_epoch)],
                    condition=CounterRecord.value.does_not_exist()
                    | (CounterRecord.value < quota.UPLOAD_LIMITS[window.name]),
                )

    try:
        write_with_retries(write)
    except TransactWriteError as error:
        codes = cancellation_codes(error)
        if codes[1:2] == [ITEM_CONDITION_FAILED]:
            raise quota.storage_exceeded(record.owner_id, int(record.size_bytes)) from None
        for code, window in zip(codes[2:], windows, strict=False):
            if code == ITEM_CONDITION_FAILED:
                raise quota.uploads_exceeded(window.name) from None
        raise


def get_model(principal: Principal, model_id: str) -> ModelRecord:
    record = get_or_404(ModelRecord, model_key(model_id), "META", missing=f"no model {model_id}")
    require_owner(principal, record.owner_id, "model")
    return record


def list_models(owner_id: str | None, limit: int, cursor: str | None) -> list[ModelRecord]:
    """Newest first; `owner_id` None lists every user's models (admin). The cursor is the
    `created_at` of the last model of the previous page."""
    before = timestamp_cursor(cursor)
    if owner_id is None:
        return newest_of_everyone(ModelRecord.everyone, ALL_MODELS, ModelRecord.gsi2sk, before, limit)
    condition = ModelRecord.gsi1sk < before if before else None
    return list(ModelRecord.by_owner.query(model_owner_key(owner_id), condition, scan_index_forward=False, limit=limit))


def delete_model(principal: Principal, model_id: str) -> None:
    record = get_model(principal, model_id)

    def write() -> None:
        with atomic_write() as transaction:
            transaction.delete(record, condition=ModelRecord.pk.exists())
            transaction.update(
                quota.usage_record(record.owner_id), actions=[UsageRecord.used_bytes.add(-record.size_bytes)]
            )

    try:
        write_with_retries(write)
    except TransactWriteError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"no model {model_id}") from None
        raise
    _delete_artifact(record)


def mark_serving(model_id: str, endpoint_url: str, replicas: int = 1, *, agent_instance_id: str | None = None) -> None:
    """Called by the GPU fleet once an instance serves the model at `endpoint_url` (HTTP POST);
    with `agent_instance_id`, only while the model is still assigned to that agent."""
    (record := ModelRecord(model_key(model_id), "META")).update(
        actions=[
            ModelRecord.status.set(READY),
            *ready_keys(True, model_id),
            ModelRecord.endpoint_url.set(endpoint_url),
            ModelRecord.replicas.set(replicas),
            ModelRecord.failure_reason.remove(),
            ModelRecord.updated_at.set(rfc3339(datetime.now(UTC))),
        ],
        condition=_still_assigned(agent_instance_id),
    )
    status_updates.model_changed(record)


def mark_failed(model_id: str, reason: str | None = None, *, agent_instance_id: str | None = None) -> None:
    """Called by the GPU fleet when no instance could load the model, with why."""
    (record := ModelRecord(model_key(model_id), "META")).update(
        actions=[
            ModelRecord.status.set(FAILED),
            *ready_keys(False, model_id),
            ModelRecord.endpoint_url.remove(),
            ModelRecord.replicas.set(0),
            *([ModelRecord.failure_reason.set(reason[:MAX_REASON])] if reason else []),
            ModelRecord.updated_at.set(rfc3339(datetime.now(UTC))),
        ],
        condition=_still_assigned(agent_instance_id),
    )
    status_updates.model_changed(record)


def _still_assigned(agent_instance_id: str | None) -> Any:
    exists = ModelRecord.pk.exists()
    return exists if agent_instance_id is None else exists & (ModelRecord.agent_instance_id == agent_instance_id)


def artifact_download_url(record: ModelRecord, expires_s: int = 3600) -> str:
    """A presigned GET of the artifact, for the GPU instance that loads the model."""
    params = {"Bucket": artifact_bucket(), "Key": record.artifact_key}
    if record.artifact_version:
        params["VersionId"] = record.artifact_version
    return client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)


def predict(principal: Principal, model_id: str, inputs: Any, parameters: dict[str, Any] | None) -> dict[str, Any]:
    record = get_model(principal, model_id)
    if record.status == FAILED:
        raise ConflictError(
            f"model {model_id} failed to load; upload it again",
            code="MODEL_FAILED",
            details={"status": record.status, **({"reason": record.failure_reason} if record.failure_reason else {})},
        )
    if not record.endpoint_url:
        raise UnavailableError(
            f"model {model_id} is not served yet (status {record.status})",
            code="MODEL_NOT_READY",
            headers={"Retry-After": "30"},
            details={"status": record.status},
        )
    started = time.perf_counter()
    try:
        response = outbound.send(
            outbound_policy.AGENTS,
            "POST",
            record.endpoint_url,
            json={"inputs": inputs, "parameters": parameters or {}},
            timeout=PREDICT_TIMEOUT_S,
            check_status=False,  # a 4xx is the inputs' fault, told apart below
        )
    except outbound.TimedOut:
        _record_prediction(record, (time.perf_counter() - started) * 1000, succeeded=False)
        raise GatewayTimeoutError(f"model {model_id} did not answer within {PREDICT_TIMEOUT_S:g} s") from None
    except outbound.Unreachable as error:
        _record_prediction(record, (time.perf_counter() - started) * 1000, succeeded=False)
        raise BadGatewayError(f"model {model_id} could not be reached: {error.cause_name}") from None
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if 400 <= response.status_code < 500:
        _record_prediction(record, latency_ms, succeeded=True)  # the inputs were wrong, not the model
        raise ValidationError(
            "the model rejected the inputs",
            param="inputs",
            details={"upstream_status": response.status_code, "upstream_body": response.text[:500]},
        )
    try:
        answer = response.json() if response.status_code < 300 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        _record_prediction(record, latency_ms, succeeded=False)
        raise BadGatewayError(
            f"model {model_id} answered {response.status_code} without a JSON object",
            details={"upstream_status": response.status_code},
        )
    _record_prediction(record, latency_ms, succeeded=True)
    served: dict[str, Any] = answer["metadata"] if isinstance(answer.get("metadata"), dict) else {}
    return {
        "model_id": model_id,
        "outputs": answer.get("outputs", answer),
        "latency_ms": latency_ms,
        "metadata": {
            "format": record.format,
            "runtime": served.get("runtime") or format_named(record.format).runtime,
            "version": record.version,
            "used_gpu": bool(served.get("used_gpu", record.gpu_required)),
        },
    }


def _record_prediction(record: ModelRecord, latency_ms: float, *, succeeded: bool) -> None:
    now = datetime.now(UTC)
    sample = PredictionRecord(
        record.pk,
        f"PRED#{rfc3339(now)}#{uuid.uuid4().hex[:8]}",
        latency_ms=round(latency_ms, 1),
        succeeded=succeeded,
        expires_at_epoch=int(now.timestamp()) + PREDICTION_RETENTION_S,
    )
    with atomic_write() as transaction:
        transaction.save(sample)
        transaction.update(
            record,
            actions=[
                ModelRecord.total_requests.add(1),
                ModelRecord.error_count.add(0 if succeeded else 1),
                ModelRecord.latency_total_ms.add(round(latency_ms, 1)),
            ],
            condition=ModelRecord.pk.exists(),
        )


def latencies(principal: Principal, model_id: str) -> tuple[ModelRecord, list[float]]:
    """The caller's model and the latencies of its recent predictions (live samples), sorted."""
    record = get_model(principal, model_id)
    now = int(time.time())
    samples = PredictionRecord.query(
        record.pk, PredictionRecord.sk.startswith("PRED#"), scan_index_forward=False, limit=LATENCY_SAMPLES
    )
    return record, sorted(float(sample.latency_ms) for sample in samples if sample.expires_at_epoch > now)
