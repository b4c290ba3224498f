"""Signed audit digests, stored outside DynamoDB: KMS signs, an Object Lock bucket keeps.

A digest object is canonical JSON `{"digest": {...}, "signature", "key_id", "signing_algorithm"}`;
the signature is ECDSA P-256 over SHA-256 of the canonical JSON of `digest`. Keys sort newest
first (`<chain>/<10^13 - epoch ms>-<id>.json`), so the newest digest is one ListObjectsV2 away.
The bucket's compliance-mode retention means an object, once written, cannot be overwritten or
deleted by anyone until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any, NamedTuple

from aiplane.audit_chain import canonical_json
from aiplane.data.aws import client
from aiplane.settings import get_settings
from aiplane_shared.resources import AUDIT_DIGEST_BUCKET, AUDIT_SIGNING_KEY, key_alias

SIGNING_ALGORITHM = "ECDSA_SHA_256"
_KEY_SPACE = 10**13  # epoch milliseconds stay below this until the year 2286


class StoredDigest(NamedTuple):
    key: str
    digest: dict[str, Any]
    signature: str  # base64
    key_id: str
    signing_algorithm: str
    sha256: str  # of the stored object's bytes: what the next digest names


def _bucket() -> str:
    return get_settings().bucket(AUDIT_DIGEST_BUCKET.name)


def _key_alias() -> str:
    return key_alias(get_settings().resource_prefix, AUDIT_SIGNING_KEY)


def put_digest(prefix: str, digest: dict[str, Any]) -> StoredDigest:
    """Sign `digest` and store it as the newest object under `prefix/`."""
    signed = client("kms").sign(
        KeyId=_key_alias(),
        Message=hashlib.sha256(canonical_json(digest)).digest(),
        MessageType="DIGEST",
        SigningAlgorithm=SIGNING_ALGORITHM,
    )
    signature = base64.b64encode(signed["Signature"]).decode()
    body = canonical_json(
        {"digest": digest, "signature": signature, "key_id": signed["KeyId"], "signing_algorithm": SIGNING_ALGORITHM}
    )
    key = f"{prefix}/{_KEY_SPACE - int(time.time() * 1000):013d}-{uuid.uuid4().hex}.json"
    client("s3").put_object(
        Bucket=_bucket(), Key=key, Body=body, ContentType="application/json", ChecksumAlgorithm="SHA256"
    )
    return StoredDigest(key, digest, signature, signed["KeyId"], SIGNING_ALGORITHM, hashlib.sha256(body).hexdigest())


def newest_digest_key(prefix: str) -> str | None:
    listed = client("s3").list_objects_v2(Bucket=_bucket(), Prefix=f"{prefix}/", MaxKeys=1)
    contents = listed.get("Contents") or []
    return contents[0]["Key"] if contents else None


def get_digest(key: str) -> StoredDigest:
    """Read a stored digest; raises ValueError when the object is not a well-formed digest."""
    body = client("s3").get_object(Bucket=_bucket(), Key=key)["Body"].read()
    try:
        stored = json.loads(body)
        return StoredDigest(
            key,
            stored["digest"],
            stored["signature"],
            stored["key_id"],
            stored["signing_algorithm"],
            hashlib.sha256(body).hexdigest(),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"digest {key} is malformed") from error


def signing_key_arn() -> str:
    return client("kms").describe_key(KeyId=_key_alias())["KeyMetadata"]["Arn"]


def signature_holds(stored: StoredDigest, key_arn: str) -> bool:
    """KMS Verify; a digest that names any key but ours (`key_arn`) does not hold."""
    if stored.key_id != key_arn:
        return False
    try:
        signature = base64.b64decode(stored.signature, validate=True)
    except ValueError:
        return False
    kms = client("kms")
    try:
        return bool(
            kms.verify(
                KeyId=stored.key_id,
                Message=hashlib.sha256(canonical_json(stored.digest)).digest(),
                MessageType="DIGEST",
                Signature=signature,
                SigningAlgorithm=SIGNING_ALGORITHM,
            )["SignatureValid"]
        )
    except kms.exceptions.KMSInvalidSignatureException:
        return False
