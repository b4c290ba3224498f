"""gpufarm models routes: upload (multipart/form-data), registry, predictions, metrics.

Contract rows of this group:
- DELETE /api/v1/models/{model_id}
- GET /api/v1/models
- GET /api/v1/models/formats (public)
- GET /api/v1/models/{model_id}
- GET /api/v1/models/{model_id}/metrics
- POST /api/v1/models/upload
- POST /api/v1/models/{model_id}/predict
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel

from aiplane.api.auth import current_principal
from aiplane.commerce import serving
from aiplane.commerce.formats import formats_view
from aiplane.commerce.scope import subject_of
from aiplane.data.pagination import parse_limit
from aiplane.errors import ValidationError

router = APIRouter()


class PredictRequest(BaseModel):
    inputs: dict[str, Any] | list[Any] | None = None
    parameters: dict[str, Any] | None = None


@router.get("/api/v1/models/formats")
def list_formats() -> dict[str, Any]:
    return formats_view()


@router.post("/api/v1/models/upload", status_code=201)
def upload_model(
    request: Request,
    model: UploadFile | None = File(default=None),
    name: str | None = Form(default=None),
    format: str | None = Form(default=None),
    framework: str | None = Form(default=None),
    version: str | None = Form(default=None),
    gpu_required: bool = Form(default=False),
    gpu_type: str | None = Form(default=None),
) -> dict[str, Any]:
    principal = current_principal(request)
    if model is None:
        raise ValidationError("model (the model file, multipart/form-data) is required", param="model")
    model.file.seek(0, 2)
    size = model.file.tell()
    model.file.seek(0)
    record = serving.upload_model(principal.id, model.filename, model.file, size, name=name, declared_format=format,
                                  framework=framework, version=version, gpu_required=gpu_required, gpu_type=gpu_type)
    return serving.upload_view(record)


@router.get("/api/v1/models")
def list_models(request: Request, limit: str | None = None, cursor: str | None = None,
                user_id: str | None = None) -> dict[str, Any]:
    principal = current_principal(request)
    # An admin without user_id sees every user's models.
    owner = None if principal.is_admin and not user_id else subject_of(principal, user_id)
    records = serving.list_models(owner, parse_limit(limit), cursor)
    return {"models": [serving.model_summary(record) for record in records], "count": len(records)}


@router.get("/api/v1/models/{model_id}")
def get_model(model_id: str, request: Request) -> dict[str, Any]:
    return serving.model_detail(serving.get_model(current_principal(request), model_id))


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
    return serving.metrics(current_principal(request), model_id)
