"""Request bodies read in the layer, shared by the routes that take multipart uploads."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request

from aiplane.data import presigned
from aiplane.errors import ValidationError


async def read_inline_form(request: Request, how: str, *, param: str, max_fields: int, **refusal: str) -> FormData:
    """A one-file multipart form carried through Lambda: refused before it is read when it is over
    the inline limit (`how` names the presigned way), a 400 naming `param` when it is malformed."""
    presigned.refuse_inline_over_limit(request.headers.get("content-length"), how, param=param, **refusal)
    try:
        return await request.form(max_files=1, max_fields=max_fields)
    except Exception as error:  # malformed multipart bodies surface as assorted parser errors
        raise ValidationError(f"the multipart body could not be read: {error}", param=param) from None
