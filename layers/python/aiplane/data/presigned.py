"""Large bodies bypass Lambda (6 MB payloads, base64 included): S3 presigned POST policies and GETs.

An upload's policy fixes the key, the content type and the exact size (`content-length-range`),
and, when the client declared one, the SHA-256 (`x-amz-checksum-sha256`), so S3 itself refuses any
other body; the record that points at the object is written only once `uploaded_object` finds the
object with that size and `check_sha256` its digest (S3's stored checksum, or computed).

A form cannot be revoked: it stays usable until it expires, also after its upload completed. The
artifacts bucket keeps versions, so completion pins the version it checked, and every read names
that version: a later POST with the same form only adds a version (tagged pending, so the
lifecycle removes it) that nothing reads.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from aiplane.clock import now, rfc3339_seconds
from aiplane.data.aws import client
from aiplane.errors import PayloadTooLargeError, ValidationError
from aiplane.settings import get_settings
from aiplane_shared.resources import PENDING_UPLOAD_TAG

UPLOAD_EXPIRY_S = 3600
DOWNLOAD_EXPIRY_S = 900
USE_PRESIGNED_UPLOAD = "use_presigned_upload"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_READ_CHUNK = 1024 * 1024
_PENDING_TAGGING = (
    f"<Tagging><TagSet><Tag><Key>{PENDING_UPLOAD_TAG[0]}</Key><Value>{PENDING_UPLOAD_TAG[1]}</Value></Tag>"
    "</TagSet></Tagging>"
)
# An upload expired this long ago is abandoned: a completion that read it before its expiry has long answered.
SWEEP_GRACE_S = 600


def refuse_inline_over_limit(
    content_length: str | int | None, how: str, *, param: str | None = None, code: str = USE_PRESIGNED_UPLOAD
) -> None:
    """Refuse, before reading it, a body that Lambda could not carry; `how` tells the client the presigned way."""
    limit = get_settings().inline_body_max_bytes
    try:
        length = int(content_length or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PayloadTooLargeError(
            f"bodies over {limit} bytes cannot be sent inline; {how}",
            param=param,
            code=code,
            details={"size_bytes": length, "inline_max_bytes": limit},
        )


def is_inline(size: int) -> bool:
    return size <= get_settings().inline_body_max_bytes


def valid_sha256(value: str | None, *, param: str = "sha256") -> str | None:
    """A declared SHA-256 as 64 lowercase hex digits (None when none was declared)."""
    if value is None:
        return None
    digest = value.strip().lower() if isinstance(value, str) else ""
    if not _SHA256_HEX.fullmatch(digest):
        raise ValidationError("sha256 must be the content's SHA-256 as 64 hexadecimal digits", param=param)
    return digest


def upload_form(bucket: str, key: str, size: int, content_type: str, sha256: str | None = None) -> dict[str, Any]:
    """{url, fields, expires_at}: POST `fields` plus the `file` part to `url` (multipart/form-data)."""
    # Tagged pending until `mark_completed`: the bucket's lifecycle deletes objects of uploads never completed.
    fields = {"Content-Type": content_type, "tagging": _PENDING_TAGGING}
    conditions = [{"Content-Type": content_type}, {"tagging": _PENDING_TAGGING}, ["content-length-range", size, size]]
    if sha256:  # S3 checks the body against it and keeps it as the object's checksum
        fields["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(sha256)).decode()
        conditions.append({"x-amz-checksum-sha256": fields["x-amz-checksum-sha256"]})
    post = client("s3").generate_presigned_post(
        bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=UPLOAD_EXPIRY_S
    )
    expires_at = rfc3339_seconds(now() + timedelta(seconds=UPLOAD_EXPIRY_S))
    return {"url": post["url"], "fields": post["fields"], "expires_at": expires_at}


def download_url(
    bucket: str,
    key: str,
    content_type: str | None = None,
    disposition: str | None = None,
    version_id: str | None = None,
) -> str:
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, **_version(version_id)}
    if content_type:
        params["ResponseContentType"] = content_type
    if disposition:
        params["ResponseContentDisposition"] = disposition
    return client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=DOWNLOAD_EXPIRY_S)


def check_sha256(
    bucket: str, key: str, declared: str, *, version_id: str | None = None, code: str = "checksum_mismatch"
) -> None:
    """ValidationError unless the object's SHA-256 is `declared`: S3's stored checksum when it has
    one for the whole object, else computed by reading the object."""
    head = client("s3").head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **_version(version_id))
    stored = head.get("ChecksumSHA256")
    if stored and "-" not in stored:  # "<digest>-<parts>" is a checksum of part checksums
        actual = base64.b64decode(stored).hex()
    else:
        digest = hashlib.sha256()
        for chunk in (
            client("s3").get_object(Bucket=bucket, Key=key, **_version(version_id))["Body"].iter_chunks(_READ_CHUNK)
        ):
            digest.update(chunk)
        actual = digest.hexdigest()
    if actual != declared:
        raise ValidationError(
            f"the uploaded content's SHA-256 is {actual}, not the {declared} declared",
            param="sha256",
            code=code,
            details={"declared_sha256": declared, "actual_sha256": actual},
        )


def mark_completed(bucket: str, key: str, version_id: str | None) -> None:
    """The upload's object version is now the record's content: no longer pending, so the lifecycle keeps it."""
    client("s3").delete_object_tagging(Bucket=bucket, Key=key, **_version(version_id))


def read_object(bucket: str, key: str, version_id: str | None = None, *, limit: int | None = None) -> bytes:
    """The object's content (its first `limit` bytes), of the version a record pinned."""
    ranged = {"Range": f"bytes=0-{limit - 1}"} if limit else {}
    return client("s3").get_object(Bucket=bucket, Key=key, **_version(version_id), **ranged)["Body"].read()


def delete_object(bucket: str, key: str) -> None:
    """Remove the object with every version and delete marker it has: a versioned bucket would
    otherwise keep the content of deleted and replaced records (and of forms posted again)."""
    s3 = client("s3")
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    versions = [
        {"Key": entry["Key"], "VersionId": entry["VersionId"]}
        for entry in (*listing.get("Versions", ()), *listing.get("DeleteMarkers", ()))
        if entry["Key"] == key
    ]
    if versions:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": versions, "Quiet": True})


def _version(version_id: str | None) -> dict[str, str]:
    """The VersionId parameter naming a pinned version (none in a bucket that keeps no versions)."""
    return {"VersionId": version_id} if version_id and version_id != "null" else {}


def expiry_sort_key(expires_at_epoch: int, record_id: str) -> str:
    """A pending upload's place in its table's expiry index (gsi1): oldest expiry first."""
    return f"{int(expires_at_epoch):012d}#{record_id}"


def abandoned_before(now: float) -> str:
    """The expiry index's bound: uploads sorting below it expired more than SWEEP_GRACE_S ago."""
    return f"{int(now) - SWEEP_GRACE_S:012d}"


def uploaded_object(bucket: str, key: str) -> tuple[int, str | None] | None:
    """The uploaded object's size and version (the one completion pins), or None while nothing is there."""
    try:
        head = client("s3").head_object(Bucket=bucket, Key=key)
        return int(head["ContentLength"]), head.get("VersionId")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
