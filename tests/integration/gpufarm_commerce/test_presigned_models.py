"""Model artifacts too large for Lambda: a presigned S3 POST (size enforced by S3), then completion writes and counts the model."""

from __future__ import annotations

import hashlib

import httpx

from aiplane.commerce import quota, serving
from aiplane.commerce.records import ModelUploadRecord, model_key
from aiplane.data import presigned
from aiplane.data.aws import client
from aiplane.settings import get_settings
from tests.integration.gpufarm_commerce.conftest import upload
from tests.integration.gpufarm_commerce.test_models import artifacts_of


def announce(gpufarm, user, **body):
    return gpufarm.post(
        "/api/v1/models/upload", headers=user.headers, json={"filename": "big.onnx", "size": 64, **body}
    )


def post_to_s3(upload_form, content):
    return httpx.post(upload_form["url"], data=upload_form["fields"], files={"file": ("big.onnx", content)})


def test_presigned_model_upload_counts_only_once_the_artifact_exists(gpufarm, user):
    content = b"\x08" * 64
    announced = announce(gpufarm, user, name="large", gpu_required=True)
    assert announced.status_code == 201, announced.text
    body = announced.json()
    model_id = body["model_id"]
    assert {key: body[key] for key in ("name", "format", "endpoint", "status")} == {
        "name": "large",
        "format": "onnx",
        "endpoint": f"/api/v1/models/{model_id}/predict",
        "status": "uploading",
    }
    assert set(body["upload"]) == {"url", "fields", "expires_at"}
    assert gpufarm.get(f"/api/v1/models/{model_id}", headers=user.headers).status_code == 404
    assert gpufarm.get("/api/v1/quota", headers=user.headers).json()["storage"]["used_bytes"] == 0
    incomplete = gpufarm.post(f"/api/v1/models/{model_id}/complete", headers=user.headers)
    assert incomplete.status_code == 409 and incomplete.json()["code"] == "UPLOAD_INCOMPLETE"

    assert post_to_s3(body["upload"], content + b"x").status_code == 400  # S3 refuses another size
    assert artifacts_of(user.id) == []
    assert post_to_s3(body["upload"], content).status_code in (200, 201, 204)

    completed = gpufarm.post(f"/api/v1/models/{model_id}/complete", headers=user.headers)
    assert completed.status_code == 200, completed.text
    assert completed.json() == {
        "model_id": model_id,
        "name": "large",
        "format": "onnx",
        "status": "loading",
        "endpoint": f"/api/v1/models/{model_id}/predict",
        "message": "Model uploaded successfully and loading",
    }
    assert gpufarm.get(f"/api/v1/models/{model_id}", headers=user.headers).json()["status"] == "loading"
    usage = gpufarm.get("/api/v1/quota", headers=user.headers).json()
    assert usage["storage"]["used_bytes"] == 64 and usage["rate_limits"]["uploads_last_hour"] == 1
    assert gpufarm.post(f"/api/v1/models/{model_id}/complete", headers=user.headers).status_code == 404


def test_only_the_owner_completes_an_upload(gpufarm, user, make_user):
    model_id = announce(gpufarm, user).json()["model_id"]
    assert gpufarm.post(f"/api/v1/models/{model_id}/complete", headers=make_user().headers).status_code in (403, 404)


def test_announcements_are_checked_against_the_quota_before_any_upload(gpufarm, user, monkeypatch):
    too_big = announce(gpufarm, user, size=quota.MAX_FILE_BYTES + 1)
    assert too_big.status_code == 413 and too_big.json()["code"] == "QUOTA_EXCEEDED"
    monkeypatch.setattr(quota, "STORAGE_LIMIT_BYTES", 10)
    assert announce(gpufarm, user).status_code == 402
    assert announce(gpufarm, user, filename="notes.txt").status_code == 400
    assert gpufarm.post("/api/v1/models/upload", headers=user.headers, json={"filename": "a.onnx"}).status_code == 400


def test_inline_uploads_over_the_threshold_are_refused_with_the_contract_error(gpufarm, user, monkeypatch):
    monkeypatch.setattr(
        presigned, "get_settings", lambda: get_settings().model_copy(update={"inline_body_max_bytes": 1024})
    )
    refused = upload(gpufarm, user.headers, "big.onnx", b"x" * 2048)
    assert refused.status_code == 413 and refused.json()["code"] == "USE_PRESIGNED_UPLOAD", refused.text
    assert "presigned" in refused.json()["error"] and refused.json()["details"]["inline_max_bytes"] == 1024
    assert artifacts_of(user.id) == []
    assert upload(gpufarm, user.headers, "small.onnx", b"x" * 10).status_code == 201


def test_a_declared_sha256_is_checked_at_completion_and_a_mismatch_writes_nothing(gpufarm, user):
    content = b"\x08" * 64
    announced = announce(gpufarm, user, sha256=hashlib.sha256(content).hexdigest())
    assert announced.status_code == 201, announced.text
    body, model_id = announced.json(), announced.json()["model_id"]
    assert post_to_s3(body["upload"], b"\x09" * 64).status_code == 400  # S3 refuses another digest
    client("s3").put_object(Bucket=serving.artifact_bucket(), Key=body["upload"]["fields"]["key"], Body=b"\x09" * 64)
    refused = gpufarm.post(f"/api/v1/models/{model_id}/complete", headers=user.headers)
    assert refused.status_code == 400 and refused.json()["code"] == "CHECKSUM_MISMATCH", refused.text
    assert artifacts_of(user.id) == []
    assert gpufarm.get(f"/api/v1/models/{model_id}", headers=user.headers).status_code == 404
    assert gpufarm.get("/api/v1/quota", headers=user.headers).json()["storage"]["used_bytes"] == 0

    assert post_to_s3(body["upload"], content).status_code in (200, 201, 204)
    completed = gpufarm.post(f"/api/v1/models/{model_id}/complete", headers=user.headers)
    assert completed.status_code == 200, completed.text


def test_a_malformed_sha256_is_a_400(gpufarm, user):
    response = announce(gpufarm, user, sha256="not-a-digest")
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR", response.text


def test_the_sweep_removes_model_uploads_past_their_expiry(gpufarm, user):
    content = b"\x08" * 64
    abandoned = announce(gpufarm, user).json()
    fresh = announce(gpufarm, user).json()
    for announced in (abandoned, fresh):
        assert post_to_s3(announced["upload"], content).status_code in (200, 201, 204)
    assert len(artifacts_of(user.id)) == 2
    pending = ModelUploadRecord.get(model_key(abandoned["model_id"]), serving.UPLOAD_SK)
    expires = int(pending.expires_at_epoch) - presigned.UPLOAD_EXPIRY_S - presigned.SWEEP_GRACE_S - 1
    pending.update(
        actions=[
            ModelUploadRecord.expires_at_epoch.set(expires),
            ModelUploadRecord.gsi1sk.set(presigned.expiry_sort_key(expires, abandoned["model_id"])),
        ]
    )
    assert serving.sweep_abandoned_uploads() >= 1
    assert artifacts_of(user.id) == [fresh["upload"]["fields"]["key"]]
    assert gpufarm.post(f"/api/v1/models/{abandoned['model_id']}/complete", headers=user.headers).status_code == 404
    assert gpufarm.post(f"/api/v1/models/{fresh['model_id']}/complete", headers=user.headers).status_code == 200
    assert gpufarm.get("/api/v1/quota", headers=user.headers).json()["storage"]["used_bytes"] == 64


def test_a_form_posted_again_after_completion_leaves_the_artifact_as_completed(gpufarm, user):
    original, other = b"\x08" * 64, b"\x09" * 64
    body = announce(gpufarm, user).json()
    assert post_to_s3(body["upload"], original).status_code in (200, 201, 204)
    assert gpufarm.post(f"/api/v1/models/{body['model_id']}/complete", headers=user.headers).status_code == 200
    assert post_to_s3(body["upload"], other).status_code in (200, 201, 204)

    record = serving.ModelRecord.get(model_key(body["model_id"]), "META")
    assert httpx.get(serving.artifact_download_url(record)).content == original
    assert gpufarm.delete(f"/api/v1/models/{body['model_id']}", headers=user.headers).status_code in (200, 204)
    assert (
        client("s3")
        .list_object_versions(Bucket=serving.artifact_bucket(), Prefix=record.artifact_key)
        .get("Versions", [])
        == []
    )
