"""Bodies too large for Lambda: presigned S3 POST uploads (size enforced by S3), completion, and presigned downloads."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from aiplane.data import aws, presigned
from aiplane.files import tree
from aiplane.files.models import FileUploadRecord, upload_key
from aiplane.settings import get_settings
from aiplane_shared import resources
from tests.integration.runtime_files.test_files import FILE_FIELDS, assert_error, objects_under, upload


@pytest.fixture
def inline_limit(monkeypatch):
    """A small inline-body threshold (the real one is 4 MiB)."""
    limited = get_settings().model_copy(update={"inline_body_max_bytes": 1024})
    monkeypatch.setattr(presigned, "get_settings", lambda: limited)
    return 1024


def post_to_s3(upload_form, content, filename="blob"):
    return httpx.post(upload_form["url"], data=upload_form["fields"], files={"file": (filename, content)})


def test_presigned_upload_creates_the_file_only_once_the_object_exists(runtime, folder):
    content = b"a large report " * 10
    announced = runtime.post(
        "/files", json={"name": "big.txt", "parentId": folder["id"], "size": len(content), "contentType": "text/plain"}
    )
    assert announced.status_code == 201, announced.text
    body = announced.json()
    assert FILE_FIELDS <= set(body) and body["status"] == "pending" and body["size"] == len(content)
    assert body["path"] == f"{folder['path']}/big.txt" and set(body["upload"]) == {"url", "fields", "expires_at"}
    file_id = body["id"]
    assert_error(runtime.get(f"/files/{file_id}"), 404)  # nothing is listed before the content exists
    assert_error(runtime.post(f"/files/{file_id}/complete"), 409, "upload_incomplete")

    assert post_to_s3(body["upload"], content + b"!").status_code == 400  # S3 enforces the announced size
    assert post_to_s3(body["upload"], content[:-1]).status_code == 400
    assert_error(runtime.post(f"/files/{file_id}/complete"), 409, "upload_incomplete")
    assert post_to_s3(body["upload"], content).status_code in (200, 201, 204)

    completed = runtime.post(f"/files/{file_id}/complete")
    assert completed.status_code == 200, completed.text
    assert set(completed.json()) == FILE_FIELDS and completed.json()["size"] == len(content)
    assert runtime.get(f"/files/{file_id}").json() == completed.json()
    assert runtime.get(f"/files/{file_id}/download").content == content
    assert_error(runtime.post(f"/files/{file_id}/complete"), 404)  # completed once


def test_presigned_replace_and_redirected_download(runtime, folder, inline_limit):
    file_id = upload(runtime, "r.bin", b"small", folder["id"]).json()["id"]
    content = bytes(range(256)) * 8
    announced = runtime.put(f"/files/{file_id}", json={"size": len(content), "contentType": "application/octet-stream"})
    assert announced.status_code == 200 and announced.json()["id"] == file_id, announced.text
    assert runtime.get(f"/files/{file_id}/download").content == b"small"  # unchanged until completed
    assert post_to_s3(announced.json()["upload"], content).status_code in (200, 201, 204)
    assert runtime.post(f"/files/{file_id}/complete").json()["size"] == len(content)

    redirected = runtime.get(f"/files/{file_id}/download", follow_redirects=False)
    assert redirected.status_code == 307
    fetched = httpx.get(redirected.headers["location"])
    assert fetched.status_code == 200 and fetched.content == content
    assert "r.bin" in fetched.headers["content-disposition"]
    skipped = httpx.get(
        runtime.get(f"/files/{file_id}/download", params={"skip": "true"}, follow_redirects=False).headers["location"]
    )
    assert skipped.content == content and "content-disposition" not in skipped.headers


def test_inline_bodies_over_the_threshold_are_refused_with_the_contract_error(runtime, folder, inline_limit):
    refused = upload(runtime, "huge.bin", b"x" * 2000, folder["id"])
    assert_error(refused, 413, "use_presigned_upload")
    assert "presigned" in refused.json()["error"]["message"]
    file_id = upload(runtime, "ok.bin", b"x", folder["id"]).json()["id"]
    assert_error(runtime.put(f"/files/{file_id}", files={"file": ("ok.bin", b"y" * 2000)}), 413, "use_presigned_upload")
    assert [item["name"] for item in runtime.get("/files", params={"path": folder["path"]}).json()] == [
        folder["name"],
        "ok.bin",
    ]


def test_presigned_announcements_are_validated(runtime, folder):
    assert_error(
        runtime.post("/files", json={"name": "x", "parentId": folder["id"], "size": 101 * 1024 * 1024}),
        413,
        "file_size_limit_exceeded",
    )
    assert_error(runtime.post("/files", json={"name": "x", "parentId": folder["id"], "size": 0}), 400)
    assert_error(runtime.post("/files", json={"name": "x", "parentId": folder["id"]}), 400)
    assert_error(runtime.post("/files", json={"name": "x", "parentId": "no-such-folder", "size": 3}), 404)
    upload(runtime, "taken.txt", b"1", folder["id"])
    assert_error(runtime.post("/files", json={"name": "taken.txt", "parentId": folder["id"], "size": 3}), 409)


def test_a_declared_sha256_is_enforced_by_s3_and_checked_at_completion(runtime, folder):
    content, other = b"checked content " * 8, b"CHECKED CONTENT " * 8
    declared = hashlib.sha256(content).hexdigest()
    announced = runtime.post(
        "/files",
        json={
            "name": "sum.txt",
            "parentId": folder["id"],
            "size": len(content),
            "contentType": "text/plain",
            "sha256": declared.upper(),
        },
    )
    assert announced.status_code == 201, announced.text
    body, file_id = announced.json(), announced.json()["id"]
    assert post_to_s3(body["upload"], other).status_code == 400  # same size, other digest: S3 refuses it (BadDigest)

    # Content that reached the key some other way is refused at completion: removed, nothing written, still pending.
    aws.client("s3").put_object(Bucket=tree.bucket(), Key=body["upload"]["fields"]["key"], Body=other)
    refused = runtime.post(f"/files/{file_id}/complete")
    assert_error(refused, 400, "checksum_mismatch")
    assert declared in refused.json()["error"]["message"]
    assert_error(runtime.get(f"/files/{file_id}"), 404)
    assert objects_under(file_id) == []
    assert_error(runtime.post(f"/files/{file_id}/complete"), 409, "upload_incomplete")

    assert post_to_s3(body["upload"], content).status_code in (200, 201, 204)
    completed = runtime.post(f"/files/{file_id}/complete")
    assert completed.status_code == 200 and completed.json()["size"] == len(content), completed.text
    assert runtime.get(f"/files/{file_id}/download").content == content


def test_a_replace_with_the_wrong_sha256_leaves_the_old_content(runtime, folder):
    file_id = upload(runtime, "keep.txt", b"old", folder["id"]).json()["id"]
    announced = runtime.put(f"/files/{file_id}", json={"size": 3, "sha256": hashlib.sha256(b"new").hexdigest()})
    aws.client("s3").put_object(Bucket=tree.bucket(), Key=announced.json()["upload"]["fields"]["key"], Body=b"bad")
    assert_error(runtime.post(f"/files/{file_id}/complete"), 400, "checksum_mismatch")
    assert runtime.get(f"/files/{file_id}/download").content == b"old"


@pytest.mark.parametrize("sha256", ["abc", "g" * 64, 12])
def test_a_malformed_sha256_is_a_400_before_anything_is_pending(runtime, folder, sha256):
    response = runtime.post("/files", json={"name": "bad.txt", "parentId": folder["id"], "size": 3, "sha256": sha256})
    assert_error(response, 400)


def tags_of(key):
    return {
        tag["Key"]: tag["Value"] for tag in aws.client("s3").get_object_tagging(Bucket=tree.bucket(), Key=key)["TagSet"]
    }


def announce_and_upload(runtime, folder, name, content=b"pending content"):
    announced = runtime.post("/files", json={"name": name, "parentId": folder["id"], "size": len(content)}).json()
    assert post_to_s3(announced["upload"], content).status_code in (200, 201, 204)
    return announced["id"], announced["upload"]["fields"]["key"]


def backdate(file_id, seconds):
    """As if the upload had been announced `seconds` earlier."""
    pending = FileUploadRecord.get(upload_key(file_id), "META")
    expires = int(pending.expires_at_epoch) - seconds
    pending.update(
        actions=[
            FileUploadRecord.expires_at_epoch.set(expires),
            FileUploadRecord.gsi1sk.set(presigned.expiry_sort_key(expires, file_id)),
        ]
    )


def test_an_uploaded_object_is_tagged_pending_until_its_upload_completes(runtime, folder):
    file_id, key = announce_and_upload(runtime, folder, "tagged.txt")
    assert tags_of(key) == {resources.PENDING_UPLOAD_TAG[0]: resources.PENDING_UPLOAD_TAG[1]}
    assert runtime.post(f"/files/{file_id}/complete").status_code == 200
    assert tags_of(key) == {}  # kept by the bucket's lifecycle from now on


def test_the_sweep_removes_uploads_past_their_expiry_and_leaves_the_others(runtime, folder):
    abandoned, abandoned_key = announce_and_upload(runtime, folder, "abandoned.txt")
    fresh, fresh_key = announce_and_upload(runtime, folder, "fresh.txt")
    backdate(abandoned, presigned.UPLOAD_EXPIRY_S + presigned.SWEEP_GRACE_S + 1)
    assert tree.sweep_abandoned_uploads() >= 1
    assert objects_under(abandoned) == [] and objects_under(fresh) == [fresh_key]
    assert_error(runtime.post(f"/files/{abandoned}/complete"), 404)
    assert runtime.post(f"/files/{fresh}/complete").status_code == 200


def test_an_upload_just_expired_is_left_to_a_later_sweep(runtime, folder):
    file_id, key = announce_and_upload(runtime, folder, "grace.txt")
    backdate(file_id, presigned.UPLOAD_EXPIRY_S + 1)  # expired, but a completion may still be finishing
    tree.sweep_abandoned_uploads()
    assert objects_under(file_id) == [key]
    assert tree.sweep_abandoned_uploads(now=time.time() + presigned.SWEEP_GRACE_S) >= 1
    assert objects_under(file_id) == []


def test_the_upload_sweep_runs_on_its_schedule(runtime, folder, local_stack):
    file_id, _ = announce_and_upload(runtime, folder, "scheduled.txt")
    backdate(file_id, presigned.UPLOAD_EXPIRY_S + presigned.SWEEP_GRACE_S + 1)
    sqs = aws.client("sqs")
    queue = resources.UPLOAD_SWEEP_QUEUE
    url = local_stack.provisioned.queue_urls[queue.name]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    local_stack.dispatchers.fire_schedule_once(resources.UPLOAD_SWEEP_SCHEDULE)
    local_stack.dispatchers.deliver_once(sqs, queue, url, arn)
    assert objects_under(file_id) == []
    assert_error(runtime.post(f"/files/{file_id}/complete"), 404)


def test_a_form_posted_again_after_completion_changes_nothing(runtime, folder, inline_limit):
    """The attack: keep the form, complete with harmless content, then post other content (and the
    pending tag, which the lifecycle acts on) through the same form before it expires."""
    original, other = b"A" * 2048, b"B" * 2048
    announced = runtime.post(
        "/files", json={"name": "kept.bin", "parentId": folder["id"], "size": len(original)}
    ).json()
    assert post_to_s3(announced["upload"], original).status_code in (200, 201, 204)
    file_id, key = announced["id"], announced["upload"]["fields"]["key"]
    assert runtime.post(f"/files/{file_id}/complete").status_code == 200
    assert post_to_s3(announced["upload"], other).status_code in (
        200,
        201,
        204,
    )  # S3 accepts it: forms can't be revoked

    assert (
        httpx.get(runtime.get(f"/files/{file_id}/download", follow_redirects=False).headers["location"]).content
        == original
    )
    assert tree.read_content(file_id)[1] == original
    pinned = tree.get_node(file_id, tree.FILE).blob_version
    assert aws.client("s3").get_object_tagging(Bucket=tree.bucket(), Key=key, VersionId=pinned)["TagSet"] == []

    assert runtime.delete(f"/files/{file_id}").status_code in (200, 204)
    assert aws.client("s3").list_object_versions(Bucket=tree.bucket(), Prefix=key).get("Versions", []) == []
