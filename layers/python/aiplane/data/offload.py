"""Values too large to travel inline (Step Functions state), kept in the artifacts bucket and passed by reference.

A reference is `{"aiplane:ref": <key>, "bytes": <size>}`. Keys are content-addressed under the
caller's prefix, so one value carried in several places is stored once; the prefix expires with
the bucket's lifecycle rule (`resources.ARTIFACT_BUCKET.expiring_prefixes`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiplane.data.aws import client
from aiplane.settings import get_settings
from aiplane_shared import resources

REF = "aiplane:ref"


def _bucket() -> str:
    return get_settings().bucket(resources.ARTIFACT_BUCKET.name)


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(REF), str) and set(value) == {REF, "bytes"}


def offload(value: Any, prefix: str, stored: dict[str, dict[str, Any]] | None = None) -> Any:
    """The value itself when it is small, else a reference to its copy in S3 (`stored`: keys written by this call's caller)."""
    if is_reference(value):
        return value
    body = json.dumps(value, separators=(",", ":")).encode()
    if len(body) <= get_settings().state_offload_bytes:
        return value
    key = f"{prefix}{hashlib.sha256(body).hexdigest()}.json"
    if stored is None or key not in stored:
        client("s3").put_object(Bucket=_bucket(), Key=key, Body=body, ContentType="application/json")
    reference = {REF: key, "bytes": len(body)}
    if stored is not None:
        stored[key] = reference
    return reference


def resolve(value: Any, loaded: dict[str, Any] | None = None) -> Any:
    """The value a reference stands for (anything else as it is); `loaded` caches reads within one caller."""
    if not is_reference(value):
        return value
    key = value[REF]
    if loaded is not None and key in loaded:
        return loaded[key]
    result = json.loads(client("s3").get_object(Bucket=_bucket(), Key=key)["Body"].read())
    if loaded is not None:
        loaded[key] = result
    return result
