"""Reading an upload: multipart/form-data (`file`, optional `name` and `parentid`) within the size
limits, or a JSON announcement `{name, parentId, size, contentType}` of a presigned upload."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from aiplane.api.forms import read_inline_form
from aiplane.data import presigned
from aiplane.errors import AiplaneError, ValidationError
from aiplane.files.tree import MAX_UPLOAD_BYTES

READ_BLOCK = 1024 * 1024


class UploadTooLargeError(ValidationError):
    @property
    def status(self) -> int:
        return 413


class UnsupportedMediaTypeError(AiplaneError):
    kind = ValidationError.kind

    @property
    def status(self) -> int:
        return 415


@dataclass(frozen=True)
class Upload:
    content: bytes
    filename: str | None
    content_type: str | None
    name: str | None
    parent_id: str | None


class PresignedUploadRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    size: int
    name: str | None = None
    parent_id: str | None = Field(default=None, alias="parentId")
    content_type: str | None = Field(default=None, alias="contentType")
    sha256: str | None = None  # hex; when given, S3 and the completion check the content against it


def wants_presigned(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("application/json")


async def read_presigned_request(request: Request) -> PresignedUploadRequest:
    try:
        body = await request.json()
        return PresignedUploadRequest.model_validate({**body, "parentId": body.get("parentId") or body.get("parentid")})
    except (ValueError, TypeError, AttributeError, PydanticValidationError) as error:
        raise ValidationError(
            f"the upload announcement must be JSON {{size, name?, parentId?, contentType?, sha256?}}: {error}",
            param="size",
        ) from None


PRESIGNED_HOW = 'send JSON {"name", "parentId", "size", "contentType"} instead for a presigned S3 upload'


async def read_upload(request: Request) -> Upload:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedMediaTypeError(
            "the upload must be multipart/form-data (or a JSON announcement of a presigned upload)",
            code="unsupported_media_type",
        )
    form = await read_inline_form(request, PRESIGNED_HOW, param="file", max_fields=10)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationError("the form field 'file' is required", param="file", code="missing_parameter")
    content = bytearray()
    while block := await upload.read(READ_BLOCK):
        content += block
        if len(content) > MAX_UPLOAD_BYTES:
            raise UploadTooLargeError(
                f"files are limited to {MAX_UPLOAD_BYTES} bytes", param="file", code="file_size_limit_exceeded"
            )
        presigned.refuse_inline_over_limit(
            len(content), PRESIGNED_HOW, param="file"
        )  # a body sent without Content-Length
    if not content:
        raise ValidationError("the file is empty", param="file", code="file_empty")
    name, parent_id = form.get("name"), form.get("parentid")
    return Upload(
        content=bytes(content),
        filename=upload.filename,
        content_type=upload.content_type,
        name=name if isinstance(name, str) and name.strip() else None,
        parent_id=parent_id if isinstance(parent_id, str) and parent_id.strip() else None,
    )
