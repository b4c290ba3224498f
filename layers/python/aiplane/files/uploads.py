"""Reading a multipart/form-data upload (`file`, optional `name` and `parentid`) within the size limit."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request

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


async def read_upload(request: Request) -> Upload:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedMediaTypeError("the upload must be multipart/form-data", code="unsupported_media_type")
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as error:  # malformed multipart bodies surface as assorted parser errors
        raise ValidationError(f"the multipart body could not be read: {error}", param="file") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationError("the form field 'file' is required", param="file", code="missing_parameter")
    content = bytearray()
    while block := await upload.read(READ_BLOCK):
        content += block
        if len(content) > MAX_UPLOAD_BYTES:
            raise UploadTooLargeError(f"files are limited to {MAX_UPLOAD_BYTES} bytes", param="file", code="file_size_limit_exceeded")
    if not content:
        raise ValidationError("the file is empty", param="file", code="file_empty")
    name, parent_id = form.get("name"), form.get("parentid")
    return Upload(
        content=bytes(content), filename=upload.filename, content_type=upload.content_type,
        name=name if isinstance(name, str) and name.strip() else None,
        parent_id=parent_id if isinstance(parent_id, str) and parent_id.strip() else None,
    )
