"""Large bodies bypass Lambda (6 MB payloads, base64 included): S3 presigned POST policies and GETs.

An upload's policy fixes the key, the content type and the exact size (`content-length-range`),
so S3 itself refuses any other body; the record that points at the object is written only once
`object_size` finds the object with that size.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from aiplane.data.aws import client
from aiplane.errors import PayloadTooLargeError
from aiplane.settings import get_settings

UPLOAD_EXPIRY_S = 3600
DOWNLOAD_EXPIRY_S = 900
USE_PRESIGNED_UPLOAD = "use_presigned_upload"


def refuse_inline_over_limit(content_length: str | int | None, how: str, *, param: str | None = None,
                             code: str = USE_PRESIGNED_UPLOAD) -> None:
    """Refuse, before reading it, a body that Lambda could not carry; `how` tells the client the presigned way."""
    limit = get_settings().inline_body_max_bytes
    try:
        length = int(content_length or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PayloadTooLargeError(f"bodies over {limit} bytes cannot be sent inline; {how}", param=param, code=code,
                                   details={"size_bytes": length, "inline_max_bytes": limit})


def is_inline(size: int) -> bool:
    return size <= get_settings().inline_body_max_bytes


def upload_form(bucket: str, key: str, size: int, content_type: str) -> dict[str, Any]:
    """{url, fields, expires_at}: POST `fields` plus the `file` part to `url` (multipart/form-data)."""
    post = client("s3").generate_presigned_post(
        bucket, key, Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", size, size]], ExpiresIn=UPLOAD_EXPIRY_S)
    expires_at = (datetime.now(UTC) + timedelta(seconds=UPLOAD_EXPIRY_S)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"url": post["url"], "fields": post["fields"], "expires_at": expires_at}


def download_url(bucket: str, key: str, content_type: str | None = None, disposition: str | None = None) -> str:
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if content_type:
        params["ResponseContentType"] = content_type
    if disposition:
        params["ResponseContentDisposition"] = disposition
    return client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=DOWNLOAD_EXPIRY_S)


def object_size(bucket: str, key: str) -> int | None:
    """The stored object's size, or None while nothing is there."""
    try:
        return int(client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
