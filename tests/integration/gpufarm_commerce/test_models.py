"""Model upload to S3, the registry, quota, predictions through a real HTTP model server, metrics."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import boto3
import httpx
import pytest

from aiplane.commerce import quota, serving
from aiplane.commerce.records import ModelRecord, model_key
from aiplane.errors import PaymentRequiredError
from tests.integration.gpufarm_commerce.conftest import upload


def s3():
    return boto3.client("s3")


def stored(record: ModelRecord) -> bytes | None:
    try:
        return s3().get_object(Bucket=serving.artifact_bucket(), Key=record.artifact_key)["Body"].read()
    except s3().exceptions.NoSuchKey:
        return None


def artifacts_of(user_id: str) -> list[str]:
    listed = s3().list_objects_v2(Bucket=serving.artifact_bucket(), Prefix=f"models/{user_id}/")
    return [item["Key"] for item in listed.get("Contents", [])]


def test_formats_are_public(gpufarm):
    response = gpufarm.get("/api/v1/models/formats")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(body["formats"]) == 13
    assert body["formats"][0] == {
        "format": "onnx",
        "extensions": [".onnx"],
        "framework": "ONNX Runtime",
        "description": "Open Neural Network Exchange format",
    }


def test_upload_stores_the_artifact_in_s3_and_counts_toward_quota(gpufarm, user):
    response = upload(
        gpufarm, user.headers, "classifier.onnx", b"\x08\x07onnx-weights", name="my_model", version="2.0.0"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    model_id = body["model_id"]
    assert body == {
        "model_id": model_id,
        "name": "my_model",
        "format": "onnx",
        "endpoint": f"/api/v1/models/{model_id}/predict",
        "status": "loading",
        "message": "Model uploaded successfully and loading",
    }
    record = ModelRecord.get(model_key(model_id), "META")
    assert stored(record) == b"\x08\x07onnx-weights"
    # the GPU instance that loads the model fetches it through a presigned URL
    assert httpx.get(serving.artifact_download_url(record)).content == b"\x08\x07onnx-weights"
    usage = gpufarm.get("/api/v1/quota", headers=user.headers).json()
    assert usage["user_id"] == user.id and usage["storage"]["used_bytes"] == 14
    assert usage["storage"]["limit_bytes"] == 107374182400 and usage["file_size"] == {"max_bytes": 10737418240}
    assert usage["rate_limits"] == {
        "uploads_last_hour": 1,
        "hourly_limit": 50,
        "uploads_last_day": 1,
        "daily_limit": 500,
    }


def test_upload_detects_the_format_and_fills_defaults(gpufarm, user):
    model_id = upload(gpufarm, user.headers, "weights.pth", b"torch").json()["model_id"]
    detail = gpufarm.get(f"/api/v1/models/{model_id}", headers=user.headers).json()
    assert detail["name"] == "weights" and detail["format"] == "pytorch" and detail["framework"] == "PyTorch"
    assert detail["version"] == "1.0.0" and detail["status"] == "loading" and detail["replicas"] == 0
    assert set(detail) == {
        "id",
        "name",
        "format",
        "version",
        "framework",
        "status",
        "replicas",
        "total_requests",
        "average_latency",
        "error_rate",
        "created_at",
        "updated_at",
    }


@pytest.mark.parametrize(
    ("filename", "fields"),
    [
        ("notes.txt", {}),  # unknown extension
        ("net.onnx", {"format": "caffe"}),  # unknown format
        ("net.onnx", {"format": "pytorch"}),  # extension does not match the format
        ("empty.onnx", {"_empty": "1"}),
        ("net.onnx", {"name": "n" * 200}),
    ],
)
def test_invalid_uploads_are_400_and_store_nothing(gpufarm, user, filename, fields):
    content = b"" if fields.pop("_empty", None) else b"bytes"
    response = upload(gpufarm, user.headers, filename, content, **fields)
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR", response.text
    assert gpufarm.get("/api/v1/models", headers=user.headers).json() == {"models": [], "count": 0}
    assert artifacts_of(user.id) == []
    assert gpufarm.get("/api/v1/quota", headers=user.headers).json()["storage"]["used_bytes"] == 0


def test_an_upload_without_a_file_is_400(gpufarm, user):
    response = gpufarm.post("/api/v1/models/upload", headers=user.headers, data={"name": "x"})
    assert response.status_code == 400 and response.json()["details"]["field"] == "model"


def test_a_file_over_the_size_limit_is_413(gpufarm, user, monkeypatch):
    monkeypatch.setattr(quota, "MAX_FILE_BYTES", 8)
    response = upload(gpufarm, user.headers, "big.onnx", b"123456789")
    assert response.status_code == 413 and response.json()["code"] == "QUOTA_EXCEEDED"
    assert artifacts_of(user.id) == []


def test_storage_quota_is_enforced_and_freed_by_delete(gpufarm, user, monkeypatch):
    monkeypatch.setattr(quota, "STORAGE_LIMIT_BYTES", 10)
    first = upload(gpufarm, user.headers, "a.onnx", b"123456").json()["model_id"]
    refused = upload(gpufarm, user.headers, "b.onnx", b"123456")
    assert refused.status_code == 402 and refused.json()["code"] == "QUOTA_EXCEEDED"
    assert len(artifacts_of(user.id)) == 1
    assert gpufarm.delete(f"/api/v1/models/{first}", headers=user.headers).json() == {
        "message": "Model deleted successfully"
    }
    assert artifacts_of(user.id) == []
    assert gpufarm.get("/api/v1/quota", headers=user.headers).json()["storage"]["used_bytes"] == 0
    assert upload(gpufarm, user.headers, "b.onnx", b"123456").status_code == 201


def test_concurrent_uploads_never_pass_the_storage_quota(user, monkeypatch):
    monkeypatch.setattr(quota, "STORAGE_LIMIT_BYTES", 30)

    def attempt(number: int) -> bool:
        try:
            serving.upload_model(
                user.id,
                f"m{number}.onnx",
                io.BytesIO(b"0123456789"),
                10,
                name=None,
                declared_format=None,
                framework=None,
                version=None,
                gpu_required=False,
                gpu_type=None,
            )
        except PaymentRequiredError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(True) == 3 and quota.used_bytes(user.id) == 30
    assert len(artifacts_of(user.id)) == 3  # refused uploads leave no artifact behind


def test_the_hourly_upload_limit_is_429_quota_exceeded(gpufarm, user, monkeypatch):
    monkeypatch.setitem(quota.UPLOAD_LIMITS, "hourly", 2)
    assert upload(gpufarm, user.headers).status_code == 201
    assert upload(gpufarm, user.headers).status_code == 201
    refused = upload(gpufarm, user.headers)
    assert refused.status_code == 429 and refused.json()["code"] == "QUOTA_EXCEEDED"
    assert int(refused.headers["Retry-After"]) >= 1 and len(artifacts_of(user.id)) == 2


def test_models_are_scoped_to_their_owner(gpufarm, make_user, admin):
    alice, bob = make_user(), make_user()
    model_id = upload(gpufarm, alice.headers).json()["model_id"]
    listed = gpufarm.get("/api/v1/models", headers=alice.headers).json()
    assert listed["count"] == 1 and listed["models"][0]["id"] == model_id
    assert set(listed["models"][0]) == {"id", "name", "format", "status", "created_at"}
    assert gpufarm.get("/api/v1/models", headers=bob.headers).json()["count"] == 0
    for method, path in (("GET", ""), ("GET", "/metrics"), ("DELETE", "")):
        response = gpufarm.request(method, f"/api/v1/models/{model_id}{path}", headers=bob.headers)
        assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    forbidden = gpufarm.post(f"/api/v1/models/{model_id}/predict", json={"inputs": {}}, headers=bob.headers)
    assert forbidden.status_code == 403
    assert model_id in {m["id"] for m in gpufarm.get("/api/v1/models", headers=admin).json()["models"]}
    assert gpufarm.get(f"/api/v1/models/{model_id}", headers=admin).status_code == 200
    assert gpufarm.get("/api/v1/models/nope", headers=alice.headers).status_code == 404


def test_predict_before_the_model_is_served_is_503(gpufarm, user):
    model_id = upload(gpufarm, user.headers).json()["model_id"]
    response = gpufarm.post(
        f"/api/v1/models/{model_id}/predict", json={"inputs": {"features": [1.0]}}, headers=user.headers
    )
    assert response.status_code == 503 and response.json()["code"] == "MODEL_NOT_READY"
    serving.mark_failed(model_id)
    failed = gpufarm.post(
        f"/api/v1/models/{model_id}/predict", json={"inputs": {"features": [1.0]}}, headers=user.headers
    )
    assert failed.status_code == 409 and failed.json()["code"] == "MODEL_FAILED"


def test_predict_forwards_to_the_serving_endpoint_and_feeds_metrics(gpufarm, user, model_server):
    model_id = upload(gpufarm, user.headers, gpu_required="true").json()["model_id"]
    serving.mark_serving(model_id, f"{model_server}/ok", replicas=2)
    request = {"inputs": {"features": [1.0, 2.0, 3.0, 4.0]}, "parameters": {"temperature": 0.7}}
    response = gpufarm.post(f"/api/v1/models/{model_id}/predict", json=request, headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == model_id and body["outputs"] == {"predictions": [0.85, 0.15]}
    assert body["latency_ms"] >= 0
    assert body["metadata"] == {"format": "onnx", "runtime": "onnxruntime", "version": "1.0.0", "used_gpu": True}
    assert gpufarm.post(f"/api/v1/models/{model_id}/predict", json={}, headers=user.headers).status_code == 400
    serving.mark_serving(model_id, f"{model_server}/broken", replicas=2)
    broken = gpufarm.post(f"/api/v1/models/{model_id}/predict", json=request, headers=user.headers)
    assert broken.status_code == 502 and broken.json()["code"] == "BAD_GATEWAY"
    metrics = gpufarm.get(f"/api/v1/models/{model_id}/metrics", headers=user.headers).json()
    assert set(metrics) == {
        "model_id",
        "name",
        "total_requests",
        "average_latency",
        "p50_latency",
        "p95_latency",
        "p99_latency",
        "error_rate",
        "status",
        "replicas",
    }
    assert metrics["total_requests"] == 2 and metrics["error_rate"] == 0.5
    assert metrics["status"] == "ready" and metrics["replicas"] == 2
    assert metrics["p50_latency"] <= metrics["p95_latency"] <= metrics["p99_latency"]
    detail = gpufarm.get(f"/api/v1/models/{model_id}", headers=user.headers).json()
    assert detail["total_requests"] == 2 and detail["status"] == "ready"


def test_upstream_timeouts_rejections_and_garbage(gpufarm, user, model_server, monkeypatch):
    model_id = upload(gpufarm, user.headers).json()["model_id"]
    request = {"inputs": {"features": [1.0]}}
    monkeypatch.setattr(serving, "PREDICT_TIMEOUT_S", 0.2)
    serving.mark_serving(model_id, f"{model_server}/slow")
    slow = gpufarm.post(f"/api/v1/models/{model_id}/predict", json=request, headers=user.headers)
    assert slow.status_code == 504 and slow.json()["code"] == "GATEWAY_TIMEOUT"
    serving.mark_serving(model_id, f"{model_server}/reject")
    rejected = gpufarm.post(f"/api/v1/models/{model_id}/predict", json=request, headers=user.headers)
    assert rejected.status_code == 400 and rejected.json()["details"]["upstream_status"] == 422
    serving.mark_serving(model_id, f"{model_server}/text")
    assert gpufarm.post(f"/api/v1/models/{model_id}/predict", json=request, headers=user.headers).status_code == 502
    serving.mark_serving(model_id, "http://127.0.0.1:9/")  # nothing listens on the discard port
    assert gpufarm.post(f"/api/v1/models/{model_id}/predict", json=request, headers=user.headers).status_code == 502
    metrics = gpufarm.get(f"/api/v1/models/{model_id}/metrics", headers=user.headers).json()
    assert metrics["total_requests"] == 4 and metrics["error_rate"] == 0.75


def test_predict_never_reaches_a_metadata_address(gpufarm, user):
    model_id = upload(gpufarm, user.headers).json()["model_id"]
    serving.mark_serving(model_id, "http://169.254.169.254/latest/meta-data/")
    refused = gpufarm.post(
        f"/api/v1/models/{model_id}/predict", json={"inputs": {"features": [1.0]}}, headers=user.headers
    )
    assert refused.status_code == 400 and "outbound-URL policy" in refused.json()["error"]
