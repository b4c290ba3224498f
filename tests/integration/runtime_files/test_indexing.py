"""Uploaded files become searchable through real indexing jobs: an upload or content change queues
a job and wakes the indexer (its SQS queue, delivered as the local dispatcher does), which leases
the job, chunks the file and embeds it through the gateway (a stand-in Ollama speaking /api/embed);
/index checks the job and lease it names; deleting a file removes its chunks."""

from __future__ import annotations

import time

import pytest

from aiplane.files import vectors
from aiplane_local.lambda_runtime import invoke
from aiplane_shared import resources
from tests.integration.runtime_events.test_jobs_and_leases import scheduled_tick
from tests.integration.runtime_files.test_files import assert_error, upload
from tests.integration.runtime_files.test_presigned_files import announce_and_upload


@pytest.fixture
def drain_indexer(local_stack):
    """Runs the local dispatcher over the file-indexing queue until it is empty: every wake-up
    reached the indexer worker (functions/runtime_indexer)."""

    def drain() -> int:
        return local_stack.drain(resources.FILE_INDEXING_QUEUE)

    drain()  # what earlier tests left: from here on, each pending indexing job is this test's
    return drain


@pytest.fixture
def owner(runtime, unique, admin_api_key, searcher):
    """A fresh user that uploads and deletes files (manage on files) and searches them (its index starts empty)."""
    from fastapi.testclient import TestClient

    from functions.family_app import build_family_app

    email = f"{unique('o')}@example.com"
    user = runtime.post(
        "/users",
        json={
            "email": email,
            "password": "pw-12345678",
            "friendlyName": "owner",
            "allowedResources": [
                {"name": "search", "resourceType": "search", "permission": "view"},
                {"name": "files", "resourceType": "files", "permission": "manage"},
            ],
        },
    )
    assert user.status_code == 201, user.text
    token = runtime.post("/login", json={"email": email, "password": "pw-12345678"}).json()["token"]
    client = TestClient(
        build_family_app("runtime"), raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    )
    client.user_id = user.json()["id"]
    return client


def pending_jobs_for(runtime, file_id):
    jobs = runtime.get("/jobs/pending", params={"limit": "1000"}).json()
    return [job for job in jobs if job["entityId"] == file_id]


def test_an_uploaded_file_becomes_searchable_through_an_indexing_job(owner, runtime, drain_indexer, embedder):
    file_id = upload(owner, "ocean.txt", b"fish swim in ocean water").json()["id"]
    [job] = pending_jobs_for(runtime, file_id)
    assert job["taskType"] == "file_index" and job["entityType"] == "file"
    assert job["payload"] == {"fileId": file_id, "ownerId": owner.user_id, "revision": 1}
    assert owner.get("/search", params={"q": "ocean"}).json()["results"] == []  # not indexed yet

    assert drain_indexer() == 1
    assert pending_jobs_for(runtime, file_id) == []
    assert "fish swim in ocean water" in embedder.embedded
    [result] = owner.get("/search", params={"q": "ocean"}).json()["results"]
    assert (result["documentId"], result["text"], result["chunkIndex"]) == (file_id, "fish swim in ocean water", 0)

    # a content change queues another job, whose chunks replace the old ones
    assert (
        owner.put(f"/files/{file_id}", files={"file": ("ocean.txt", b"the car engine", "text/plain")}).status_code
        == 200
    )
    assert len(pending_jobs_for(runtime, file_id)) == 1
    drain_indexer()
    [result] = owner.get("/search", params={"q": "ocean"}).json()["results"]
    assert result["text"] == "the car engine"


def test_a_presigned_upload_is_indexed_once_completed(owner, runtime, drain_indexer):
    folder = owner.post("/folders", json={"name": "presigned"}).json()
    file_id, _ = announce_and_upload(owner, folder, "big.txt", b"bird tree")
    assert pending_jobs_for(runtime, file_id) == []  # nothing to index before the upload completes
    assert owner.post(f"/files/{file_id}/complete").status_code == 200
    assert len(pending_jobs_for(runtime, file_id)) == 1
    drain_indexer()
    assert [item["text"] for item in owner.get("/search", params={"q": "tree"}).json()["results"]] == ["bird tree"]


def test_a_long_file_is_indexed_in_chunks(owner, drain_indexer):
    paragraphs = ["cat " * 200, "dog " * 200, "fish " * 150]
    file_id = upload(owner, "long.txt", "\n\n".join(paragraphs).encode()).json()["id"]
    drain_indexer()
    assert vectors.chunk_count(owner.user_id, file_id) == 3
    best = owner.get("/search", params={"q": "fish", "topk": "1"}).json()["results"][0]
    assert best["chunkIndex"] == 2 and best["text"] == paragraphs[2].strip()


def test_deleting_a_file_removes_its_chunks(owner, drain_indexer):
    folder = owner.post("/folders", json={"name": "docs"}).json()
    kept = upload(owner, "kept.txt", b"cat dog").json()["id"]
    gone = upload(owner, "gone.txt", b"cat cat").json()["id"]
    nested = upload(owner, "nested.txt", b"cat bird", folder["id"]).json()["id"]
    drain_indexer()
    assert {item["documentId"] for item in owner.get("/search", params={"q": "cat"}).json()["results"]} == {
        kept,
        gone,
        nested,
    }

    assert owner.delete(f"/files/{gone}").status_code == 200
    assert vectors.chunk_count(owner.user_id, gone) == 0
    assert owner.delete(f"/folders/{folder['id']}").status_code == 200
    assert vectors.chunk_count(owner.user_id, nested) == 0
    assert [item["documentId"] for item in owner.get("/search", params={"q": "cat"}).json()["results"]] == [kept]


def test_a_file_deleted_before_its_job_runs_leaves_no_chunks(owner, runtime, drain_indexer):
    file_id = upload(owner, "brief.txt", b"tree").json()["id"]
    assert owner.delete(f"/files/{file_id}").status_code == 200
    drain_indexer()
    assert pending_jobs_for(runtime, file_id) == [] and vectors.chunk_count(owner.user_id, file_id) == 0


def test_binary_content_is_not_indexed(owner, runtime, drain_indexer, embedder):
    file_id = upload(owner, "blob.bin", b"\x00\x01cat", content_type="application/octet-stream").json()["id"]
    drain_indexer()
    assert pending_jobs_for(runtime, file_id) == [] and vectors.chunk_count(owner.user_id, file_id) == 0
    assert embedder.embedded == []


def lease_job_of(runtime, file_id, leaser, duration="30s"):
    leased = runtime.post("/leases", json={"leaserId": leaser, "leaseDuration": duration, "jobTypes": ["file_index"]})
    assert leased.status_code == 201, leased.text
    assert leased.json()["entityId"] == file_id  # the queue was drained: this test's job is the only one
    return leased.json()


def test_an_external_worker_indexes_through_leases_and_index(owner, runtime, drain_indexer):
    file_id = upload(owner, "road.txt", b"road").json()["id"]
    job = lease_job_of(runtime, file_id, "external-1")
    in_progress = [item for item in runtime.get("/jobs/in-progress").json() if item["id"] == job["id"]]
    assert in_progress and in_progress[0]["leaserId"] == "external-1"

    body = {"id": file_id, "chunks": ["the road"], "jobId": job["id"], "leaserId": "external-1", "replace": True}
    indexed = runtime.post("/index", json=body)
    assert indexed.status_code == 200, indexed.text
    assert runtime.patch(f"/jobs/{job['id']}/done", json={"leaserId": "external-1"}).status_code == 200
    # the chunks went to the file owner's index, not the worker's
    assert [item["text"] for item in owner.get("/search", params={"q": "road"}).json()["results"]] == ["the road"]
    assert drain_indexer() == 1  # the wake-up finds nothing left to lease
    assert vectors.chunk_count(owner.user_id, file_id) == 1


def test_index_refuses_a_wrong_job_leaser_or_document_and_writes_nothing(owner, runtime, drain_indexer, embedder):
    file_id = upload(owner, "refused.txt", b"cat").json()["id"]
    job = lease_job_of(runtime, file_id, "external-2")
    body = {"id": file_id, "chunks": ["cat"], "jobId": job["id"], "leaserId": "external-2", "replace": True}
    assert_error(runtime.post("/index", json={**body, "leaserId": "intruder"}), 409)
    assert_error(runtime.post("/index", json={**body, "jobId": "no-such-job"}), 404)
    assert_error(runtime.post("/index", json={**body, "leaserId": ""}), 400)
    assert_error(runtime.post("/index", json={**body, "id": "another-document"}), 400)
    assert (
        vectors.chunk_count(owner.user_id, file_id) == 0 and vectors.chunk_count(owner.user_id, "another-document") == 0
    )
    assert embedder.embedded == []  # refused before the backend was asked
    runtime.patch(f"/jobs/{job['id']}/failed", json={"leaserId": "external-2"})
    drain_indexer()


def test_index_refuses_an_expired_lease_and_the_job_returns_to_the_indexer(owner, runtime, drain_indexer):
    file_id = upload(owner, "late.txt", b"dog").json()["id"]
    leased_at = time.monotonic()
    job = lease_job_of(runtime, file_id, "slow-worker", duration="3s")
    assert drain_indexer() == 1  # the upload's wake-up: the job is leased, nothing to do
    time.sleep(max(0.0, leased_at + 3.2 - time.monotonic()))
    late = runtime.post(
        "/index",
        json={"id": file_id, "chunks": ["dog"], "jobId": job["id"], "leaserId": "slow-worker", "replace": True},
    )
    assert_error(late, 409)
    assert vectors.chunk_count(owner.user_id, file_id) == 0
    # the lease-expiry tick returns the job to the queue and wakes the indexer, which indexes the file
    assert invoke("runtime_job_leases", scheduled_tick()) == {"batchItemFailures": []}
    assert pending_jobs_for(runtime, file_id)[0]["retryCount"] == 0
    assert drain_indexer() == 1
    assert vectors.chunk_count(owner.user_id, file_id) == 1 and pending_jobs_for(runtime, file_id) == []
