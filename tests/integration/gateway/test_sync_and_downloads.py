"""The sync cycle (schedule → SQS → worker → backend state) and the model-download queue
(pull progress over SSE, cancel, dropped jobs)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from aiplane.gateway import downloads, pulls, sync
from aiplane_local.lambda_runtime import LocalLambdaContext, load_handler
from aiplane_shared.resources import GATEWAY_SYNC_SCHEDULE, MODEL_DOWNLOAD_QUEUE
from tests.integration.gateway.standins import OllamaStandIn, OpenAIStandIn


def sqs_event(*bodies: dict) -> dict:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": json.dumps(body),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def queued_job(runtime, model: str) -> dict | None:
    return next((job for job in runtime.get("/queue").json() if job["modelJob"]["model"] == model), None)


def test_ollama_sync_queues_missing_models_removes_undeclared_and_records_pulled(runtime, gateway, unique):
    present, missing = unique("present") + ":latest", unique("missing") + ":latest"
    ollama = OllamaStandIn("sync", models=[present, "stray:latest"])
    try:
        backend_id = gateway.backend(unique("b"), ollama.url)
        group_id = gateway.group(unique("g"))
        gateway.join(
            group_id,
            backends=(backend_id,),
            models=(gateway.model(present, contextLength=2048), gateway.model(missing)),
        )

        assert sync.sync_one(backend_id) is None
        assert ollama.deleted == ["stray:latest"]
        details = runtime.get(f"/backends/{backend_id}").json()
        assert details["error"] == "" and details["models"] == [present]
        pulled = details["pulledModels"][0]
        assert pulled["model"] == present and pulled["canChat"] is True and pulled["contextLength"] == 2048
        assert pulled["details"]["format"] == "gguf" and pulled["size"] == 1000

        job = queued_job(runtime, missing)
        assert job["taskType"] == "model_download" and job["modelJob"] == {"url": ollama.url, "model": missing}
        assert job["validUntil"] > job["scheduledFor"] > 0 and job["createdAt"]
        sync.sync_one(backend_id)
        assert (
            len([j for j in runtime.get("/queue").json() if j["modelJob"]["model"] == missing]) == 1
        )  # not queued twice

        state = next(item for item in runtime.get("/state").json() if item["id"] == backend_id)
        assert state["models"] == [present] and state["backend"]["baseUrl"] == ollama.url
    finally:
        ollama.stop()


def test_vllm_must_serve_a_declared_model(gateway, runtime, unique):
    served = unique("served")
    vllm = OpenAIStandIn("vllm", models=[served])
    try:
        backend_id = gateway.backend(unique("v"), vllm.url, "vllm")
        group_id = gateway.group(unique("g"))
        gateway.join(group_id, backends=(backend_id,))
        assert "not declared" in sync.sync_one(backend_id)
        assert "not declared" in runtime.get(f"/backends/{backend_id}").json()["error"]
        gateway.join(group_id, models=(gateway.model(served),))
        assert sync.sync_one(backend_id) is None
        assert runtime.get(f"/backends/{backend_id}").json()["models"] == [served]
        response = runtime.post(
            "/v1/chat/completions", json={"model": served, "messages": [{"role": "user", "content": "v"}]}
        )
        assert response.json()["choices"][0]["message"]["content"] == "vllm says: v"
    finally:
        vllm.stop()


def test_unreachable_backend_and_unconfigured_provider_record_errors(gateway, runtime, unique):
    dead = gateway.backend(unique("dead"), "http://127.0.0.1:9")
    assert "unreachable" in sync.sync_one(dead)
    assert "unreachable" in runtime.get(f"/backends/{dead}").json()["error"]
    runtime.delete("/providers/gemini/config")
    gemini = gateway.backend(unique("gem"), "http://127.0.0.1:9", "gemini")
    assert "not configured" in sync.sync_one(gemini)


def test_schedule_tick_reaches_the_sync_worker_through_sqs(local_stack, gateway, runtime, unique):
    ollama = OllamaStandIn("tick", models=[])
    try:
        backend_id = gateway.backend(unique("b"), ollama.url)
        dispatchers = local_stack.dispatchers
        import boto3

        sqs = boto3.client("sqs")
        url = local_stack.provisioned.queue_urls[GATEWAY_SYNC_SCHEDULE.target_queue]
        # Earlier tests left per-backend sync requests (nothing consumes them in tests): only the tick counts here.
        sqs.purge_queue(QueueUrl=url)
        dispatchers.fire_schedule_once(GATEWAY_SYNC_SCHEDULE)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = next(
            q
            for q in __import__("aiplane_shared.resources", fromlist=["QUEUES"]).QUEUES
            if q.name == GATEWAY_SYNC_SCHEDULE.target_queue
        )
        deadline = time.monotonic() + 60
        while runtime.get(f"/backends/{backend_id}").json()["error"] or ("GET", "/api/tags") not in ollama.requests:
            assert time.monotonic() < deadline, "the tick never reached the backend"
            dispatchers.deliver_once(sqs, queue, url, arn)
        assert runtime.get(f"/backends/{backend_id}").json()["error"] == ""
    finally:
        ollama.stop()


@pytest.fixture
def pulling(gateway, unique):
    """A declared model missing from a slow-pulling stand-in Ollama, with its queued download job."""
    ollama = OllamaStandIn("puller", pull_steps=60, pull_step_s=0.05)
    model = unique("big") + ":latest"
    backend_id = gateway.backend(unique("b"), ollama.url)
    group_id = gateway.group(unique("g"))
    gateway.join(group_id, backends=(backend_id,), models=(gateway.model(model),))
    sync.sync_one(backend_id)
    yield {"ollama": ollama, "model": model, "backend": backend_id, "job": downloads.job_id_for(ollama.url, model)}
    ollama.stop()


def test_pull_progress_streams_over_sse_and_cancel_stops_the_pull(runtime, pulling):
    outcome: dict[str, str] = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("status", pulls.run_job(pulling["job"])))
    worker.start()

    def cancel_when_progressing() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            job = next((j for j in downloads.all_jobs() if j.id == pulling["job"]), None)
            if job is not None and (job.completed or 0) >= 20000:
                break
            time.sleep(0.05)
        assert (
            runtime.delete("/queue/cancel", params={"model": pulling["model"]}).json()
            == "Model download cancellation initiated"
        )

    canceller = threading.Thread(target=cancel_when_progressing)
    canceller.start()
    stream = runtime.get("/queue/inProgress")
    canceller.join()
    worker.join(timeout=30)

    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    events = [block for block in stream.text.split("\n\n") if block.strip()]
    assert all(block.startswith("event: status\ndata: ") for block in events)
    statuses = [json.loads(block.split("data: ", 1)[1]) for block in events]
    ours = [s for s in statuses if s["model"] == pulling["model"]]
    assert any(
        s["status"] == "downloading" and s["total"] == 60000 and s["completed"] > 0 and s["digest"] == "sha256:abc"
        for s in ours
    )
    assert all(s["baseUrl"] == pulling["ollama"].url for s in ours)
    assert ours[-1]["status"] == "cancelled"
    assert outcome["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while pulling["model"] not in pulling["ollama"].pulls_aborted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pulling["model"] in pulling["ollama"].pulls_aborted and not pulling["ollama"].pulls_finished
    assert queued_job(runtime, pulling["model"]) is None


def test_the_download_worker_pulls_the_model_and_reports_per_message(runtime, pulling):
    pulling["ollama"].pull_steps = 3
    handler = load_handler(MODEL_DOWNLOAD_QUEUE.consumer)
    result = handler(
        sqs_event({"jobId": pulling["job"]}), LocalLambdaContext(function_name=MODEL_DOWNLOAD_QUEUE.consumer)
    )
    assert result == {"batchItemFailures": []}
    assert pulling["ollama"].pulls_finished == [pulling["model"]]
    assert queued_job(runtime, pulling["model"]) is None
    assert sync.sync_one(pulling["backend"]) is None
    assert runtime.get(f"/backends/{pulling['backend']}").json()["models"] == [pulling["model"]]


def test_a_job_whose_backend_is_gone_is_dropped(runtime, pulling):
    runtime.delete(f"/backends/{pulling['backend']}")
    assert pulls.run_job(pulling["job"]) == "dropped"
    assert pulls.run_job("no-such-job") == "dropped"
    assert not pulling["ollama"].pulls_finished


def test_queue_removal_and_model_purge(runtime, gateway, pulling):
    assert queued_job(runtime, pulling["model"]) is not None
    assert runtime.delete(f"/queue/{pulling['model']}").json() == "Model removed from queue"
    assert queued_job(runtime, pulling["model"]) is None
    assert runtime.delete("/queue/cancel").status_code == 400

    sync.sync_one(pulling["backend"])  # queued again: still declared and missing
    assert queued_job(runtime, pulling["model"]) is not None
    assert runtime.delete("/queue/cancel", params={"url": pulling["ollama"].url + "/"}).status_code == 200
    assert queued_job(runtime, pulling["model"]) is None

    sync.sync_one(pulling["backend"])
    assert queued_job(runtime, pulling["model"]) is not None
    model_id = next(
        m["id"] for m in runtime.get("/models", params={"limit": 1000}).json() if m["model"] == pulling["model"]
    )
    assert runtime.delete(f"/models/{model_id}", params={"purge": "true"}).json() == "model removed"
    assert queued_job(runtime, pulling["model"]) is None


def job_record(job_id: str):
    from aiplane.gateway.records import DOWNLOADS_PARTITION, DownloadJobRecord

    return DownloadJobRecord.get(DOWNLOADS_PARTITION, f"JOB#{job_id}")


def test_the_worker_takes_one_pull_per_message_and_extends_its_visibility(runtime, pulling, monkeypatch):
    """A real message on a queue of its own, received with a 1 s visibility: the pull lasts 2 s and
    the worker keeps extending it, so no other worker can receive the message meanwhile."""
    import boto3

    assert (
        MODEL_DOWNLOAD_QUEUE.batch_size == 1
        and MODEL_DOWNLOAD_QUEUE.visibility_timeout_s >= MODEL_DOWNLOAD_QUEUE.consumer_timeout_s
    )
    monkeypatch.setattr(pulls, "HEARTBEAT_EVERY_S", 0.2)
    pulling["ollama"].pull_steps = 40  # 2 s
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"pull-visibility-{pulling['job'][:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"jobId": pulling["job"]}))
    message = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, MaxNumberOfMessages=1)["Messages"][0]
    event = sqs_event({"jobId": pulling["job"]})
    event["Records"][0].update(receiptHandle=message["ReceiptHandle"], eventSourceARN=arn)
    try:
        handler = load_handler(MODEL_DOWNLOAD_QUEUE.consumer)
        context = LocalLambdaContext(
            function_name=MODEL_DOWNLOAD_QUEUE.consumer, timeout_s=MODEL_DOWNLOAD_QUEUE.consumer_timeout_s
        )
        assert handler(event, context) == {"batchItemFailures": []}
        assert pulling["ollama"].pulls_finished == [pulling["model"]]
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None  # still hidden, 2 s on
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_a_pull_is_bounded_in_time_and_resumes_in_a_new_message(runtime, pulling):
    pulling["ollama"].pull_steps = 40  # 2 s, over the 0.5 s slice
    assert pulls.run_job(pulling["job"], slice_s=0.5) == pulls.REQUEUED
    job = job_record(pulling["job"])
    assert (job.status, job.progress_status, int(job.attempts), job.failures) == ("queued", "resuming", 1, None)
    deadline = time.monotonic() + 10
    while pulling["model"] not in pulling["ollama"].pulls_aborted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pulling["model"] in pulling["ollama"].pulls_aborted  # the pull was closed, not left running

    assert pulls.run_job(pulling["job"]) == downloads.DONE
    assert pulling["ollama"].pulls_finished == [pulling["model"]] and int(job_record(pulling["job"]).attempts) == 2


def test_a_killed_pull_is_recovered_never_left_running(runtime, pulling):
    from aiplane.gateway.records import DownloadJobRecord

    job = job_record(pulling["job"])
    # A worker took the job and died: running, with a heartbeat long gone.
    job.update(
        actions=[DownloadJobRecord.status.set("running"), DownloadJobRecord.heartbeat_at.set(time.time() - 3600)]
    )
    assert pulls.recover_stale() >= 1
    assert job_record(pulling["job"]).status == "queued"

    # A live worker's job is not taken twice; a dead one's is, when its message comes back.
    job.update(actions=[DownloadJobRecord.status.set("running"), DownloadJobRecord.heartbeat_at.set(time.time())])
    assert pulls.run_job(pulling["job"]) == "busy" and pulls.recover_stale() == 0
    job.update(actions=[DownloadJobRecord.heartbeat_at.set(time.time() - 3600)])
    pulling["ollama"].pull_steps = 2
    assert pulls.run_job(pulling["job"]) == downloads.DONE

    assert int(job_record(pulling["job"]).failures) == 2  # killed twice so far

    # One that keeps dying fails instead of cycling forever.
    job.update(
        actions=[
            DownloadJobRecord.status.set("running"),
            DownloadJobRecord.heartbeat_at.set(time.time() - 3600),
            DownloadJobRecord.failures.set(pulls.MAX_FAILURES - 1),
        ]
    )
    pulls.recover_stale()
    failed = job_record(pulling["job"])
    assert failed.status == "failed" and "killed or broke" in failed.error
