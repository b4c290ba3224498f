"""gpufarm models routes: upload (multipart/form-data), registry, predictions, metrics.

Contract rows of this group:
- DELETE /api/v1/models/{model_id}
- GET /api/v1/models
- GET /api/v1/models/formats (public)
- GET /api/v1/models/{model_id}
- GET /api/v1/models/{model_id}/metrics
- POST /api/v1/models/upload
- POST /api/v1/models/{model_id}/predict
Extra route: POST /api/v1/models/{model_id}/complete (a presigned upload is in S3).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from aiplane.api.auth import current_principal
from aiplane.api.forms import read_inline_form
from aiplane.commerce import serving, views
from aiplane.commerce.scope import subject_of
from aiplane.data.pagination import parse_limit
from aiplane.errors import ValidationError

router = APIRouter()


class PredictRequest(BaseModel):
    inputs: dict[str, Any] | list[Any] | None = None
    parameters: dict[str, Any] | None = None


@router.get("/api/v1/models/formats")
def list_formats() -> dict[str, Any]:
    return views.formats_view()


class UploadFields(BaseModel):
    """The contract's form fields (multipart), or with `filename` and `size` a presigned upload's JSON announcement."""

    name: str | None = None
    format: str | None = None
    framework: str | None = None
    version: str | None = None
    gpu_required: bool = False
    gpu_type: str | None = None


class UploadAnnouncement(UploadFields):
    filename: str
    size: int
    sha256: str | None = None  # hex; when given, S3 and the completion check the artifact against it


PRESIGNED_HOW = (
    'send JSON {"filename", "size", "name", "format", ...} instead for a presigned S3 upload, '
    "then POST /api/v1/models/{model_id}/complete"
)


def _fields(model: type[UploadFields], values: Any) -> Any:
    try:
        return model.model_validate(values)
    except PydanticValidationError as error:
        first = error.errors()[0]
        raise ValidationError(
            f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}",
            param=str(first["loc"][0]) if first["loc"] else None,
        ) from None


def _serving_fields(fields: UploadFields) -> dict[str, Any]:
    return {
        "name": fields.name,
        "declared_format": fields.format,
        "framework": fields.framework,
        "version": fields.version,
        "gpu_required": fields.gpu_required,
        "gpu_type": fields.gpu_type,
    }


@router.post("/api/v1/models/upload", status_code=201)
async def upload_model(request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    if request.headers.get("content-type", "").lower().startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise ValidationError("the body is not JSON") from None
        announced = _fields(UploadAnnouncement, body)
        record, upload = await run_in_threadpool(
            serving.start_upload,
            principal.id,
            announced.filename,
            announced.size,
            announced.sha256,
            **_serving_fields(announced),
        )
        return views.pending_upload_view(record, upload)
    form = await read_inline_form(request, PRESIGNED_HOW, param="model", max_fields=20, code="USE_PRESIGNED_UPLOAD")
    model = form.get("model")
    if not isinstance(model, UploadFile):
        raise ValidationError("model (the model file, multipart/form-data) is required", param="model")
    fields = _fields(UploadFields, {key: value for key, value in form.items() if isinstance(value, str)})
    model.file.seek(0, 2)
    size = model.file.tell()
    model.file.seek(0)
    record = await run_in_threadpool(
        serving.upload_model, principal.id, model.filename, model.file, size, **_serving_fields(fields)
    )
    return views.upload_view(record)


@router.post("/api/v1/models/{model_id}/complete", include_in_schema=False)
def complete_upload(model_id: str, request: Request) -> dict[str, Any]:
    return views.upload_view(serving.complete_upload(current_principal(request), model_id))


@router.get("/api/v1/models")
def list_models(
    request: Request, limit: str | None = None, cursor: str | None = None, user_id: str | None = None
) -> dict[str, Any]:
    principal = current_principal(request)
    # An admin without user_id sees every user's models.
    owner = None if principal.is_admin and not user_id else subject_of(principal, user_id)
    records = serving.list_models(owner, parse_limit(limit), cursor)
    return {"models": [views.model_summary(record) for record in records], "count": len(records)}


@router.get("/api/v1/models/{model_id}")
def get_model(model_id: str, request: Request) -> dict[str, Any]:
    return views.model_detail(serving.get_model(current_principal(request), model_id))


@router.delete("/api/v1/models/{model_id}")
def delete_model(model_id: str, request: Request) -> dict[str, Any]:
    serving.delete_model(current_principal(request), model_id)
    return {"message": "Model deleted successfully"}


@router.post("/api/v1/models/{model_id}/predict")
def predict(model_id: str, body: PredictRequest, request: Request) -> dict[str, Any]:
    if body.inputs is None:
        raise ValidationError("inputs is required", param="inputs")
    return serving.predict(current_principal(request), model_id, body.inputs, body.parameters)


@router.get("/api/v1/models/{model_id}/metrics")
def model_metrics(model_id: str, request: Request) -> dict[str, Any]:
    return views.metrics_view(*serving.latencies(current_principal(request), model_id))
