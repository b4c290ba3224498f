"""Jobs and leases (inventory section Y): the oldest pending job of a listed type, leases that
always have a duration and come back when they expire, conditional writes so concurrent leasers
never share a job, holder checks on done/failed, and scheduledFor/validUntil enforced."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3

from aiplane.events import jobs
from aiplane.events.models import JobRecord
from aiplane_local.lambda_runtime import invoke
from aiplane_shared import resources
from events.generate import scheduled_tick

JOB_FIELDS = {
    "id",
    "taskType",
    "operation",
    "subject",
    "entityId",
    "entityType",
    "payload",
    "scheduledFor",
    "validUntil",
    "retryCount",
    "createdAt",
}


def lease(runtime, headers, job_types, leaser="w1", duration="30s"):
    return runtime.post(
        "/leases", json={"leaserId": leaser, "leaseDuration": duration, "jobTypes": job_types}, headers=headers
    )


def expire_lease(job_id):
    record = jobs.get_job(job_id)
    past = time.time() - 1
    record.update(actions=[JobRecord.lease_expires_epoch.set(past), JobRecord.gsi1sk.set(f"{past:015.3f}#{job_id}")])


def test_lease_gives_the_oldest_pending_job_of_a_listed_type(runtime, headers, unique):
    kind, other = unique("embed"), unique("index")
    first = jobs.create_job(
        kind, operation="embed", subject="doc-1", entity_id="d1", entity_type="document", payload={"p": 1}
    )
    jobs.create_job(other)
    second = jobs.create_job(kind)
    assert set(first) == JOB_FIELDS and first["retryCount"] == 0

    leased = lease(runtime, headers, [kind, unique("unused")])
    assert leased.status_code == 201, leased.text
    body = leased.json()
    assert body["id"] == first["id"] and body["payload"] == {"p": 1} and body["leaserId"] == "w1"
    assert body["leaseDuration"] == "30s" and body["leaseExpiration"].endswith("Z")
    assert lease(runtime, headers, [kind]).json()["id"] == second["id"]
    assert lease(runtime, headers, [kind]).status_code == 404

    pending = [job["id"] for job in runtime.get("/jobs/pending", params={"limit": "1000"}, headers=headers).json()]
    in_progress = {
        job["id"]: job for job in runtime.get("/jobs/in-progress", params={"limit": "1000"}, headers=headers).json()
    }
    assert first["id"] not in pending and first["id"] in in_progress and in_progress[first["id"]]["leaserId"] == "w1"


def test_lease_validation(runtime, headers):
    cases = [
        ({"leaseDuration": None}, "leaseDuration"),
        ({"leaseDuration": ""}, "leaseDuration"),
        ({"leaseDuration": "30"}, "leaseDuration"),
        ({"leaseDuration": "10ns"}, "leaseDuration"),
        ({"leaseDuration": "25h"}, "leaseDuration"),
        ({"leaserId": ""}, "leaserId"),
        ({"jobTypes": []}, "jobTypes"),
        ({"jobTypes": "embed"}, "jobTypes"),
    ]
    for change, param in cases:
        body = {"leaserId": "w", "leaseDuration": "1m30s", "jobTypes": ["x"], **change}
        response = runtime.post("/leases", json=body, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["param"] == param, change
    assert runtime.post("/leases", headers=headers).status_code == 400
    assert jobs.parse_duration("1m30s") == 90 and jobs.parse_duration("1500ms") == 1.5


def test_concurrent_leasers_never_share_a_job(runtime, headers, unique):
    kind = unique("race")
    created = {jobs.create_job(kind)["id"] for _ in range(5)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: lease(runtime, headers, [kind], leaser=f"w{n}"), range(8)))
    won = [result.json()["id"] for result in results if result.status_code == 201]
    assert sorted(won) == sorted(created)  # each job once, every job leased
    assert sorted(result.status_code for result in results) == [201] * 5 + [404] * 3


def test_done_and_failed_need_the_lease_holder(runtime, headers, unique):
    kind = unique("work")
    job = jobs.create_job(kind)
    lease(runtime, headers, [kind], leaser="holder")
    assert runtime.patch(f"/jobs/{job['id']}/done", json={"leaserId": "intruder"}, headers=headers).status_code == 409
    assert runtime.patch(f"/jobs/{job['id']}/failed", json={"leaserId": ""}, headers=headers).status_code == 400
    assert runtime.patch("/jobs/no-such-job/done", json={"leaserId": "holder"}, headers=headers).status_code == 404

    failed = runtime.patch(f"/jobs/{job['id']}/failed", json={"leaserId": "holder"}, headers=headers)
    assert failed.status_code == 200 and isinstance(failed.json(), str)
    again = lease(runtime, headers, [kind], leaser="second").json()
    assert again["id"] == job["id"] and again["retryCount"] == 1
    assert runtime.patch(f"/jobs/{job['id']}/done", json={"leaserId": "holder"}, headers=headers).status_code == 409
    done = runtime.patch(f"/jobs/{job['id']}/done", json={"leaserId": "second"}, headers=headers)
    assert done.status_code == 200
    assert runtime.patch(f"/jobs/{job['id']}/done", json={"leaserId": "second"}, headers=headers).status_code == 404


def test_expired_leases_return_to_the_queue_by_schedule(runtime, headers, unique, local_stack):
    kind = unique("expiring")
    job = jobs.create_job(kind)
    lease(runtime, headers, [kind], leaser="slow")
    expire_lease(job["id"])
    assert runtime.patch(f"/jobs/{job['id']}/done", json={"leaserId": "slow"}, headers=headers).status_code == 409

    # The schedule's rule → its queue → the consumer, as the local dispatchers run it.
    sqs = boto3.client("sqs", region_name=local_stack.dispatchers.region)
    queue = resources.JOB_LEASE_EXPIRY_QUEUE
    url = local_stack.provisioned.queue_urls[queue.name]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    local_stack.dispatchers.fire_schedule_once(resources.JOB_LEASE_EXPIRY_SCHEDULE)
    assert local_stack.dispatchers.deliver_once(sqs, queue, url, arn) >= 1
    assert jobs.get_job(job["id"]).status == jobs.PENDING
    assert job["id"] in [
        item["id"] for item in runtime.get("/jobs/pending", params={"limit": "1000"}, headers=headers).json()
    ]
    assert lease(runtime, headers, [kind], leaser="fast").json()["id"] == job["id"]


def test_the_expiry_consumer_and_lease_requests_both_reclaim(runtime, headers, unique):
    kind = unique("expiring")
    job = jobs.create_job(kind)
    lease(runtime, headers, [kind], leaser="slow")
    expire_lease(job["id"])
    assert lease(runtime, headers, [kind], leaser="next").json()["id"] == job["id"]  # reclaimed on the way
    expire_lease(job["id"])
    assert invoke("runtime_job_leases", scheduled_tick()) == {"batchItemFailures": []}
    assert jobs.get_job(job["id"]).status == jobs.PENDING


def test_scheduled_for_and_valid_until_are_enforced(runtime, headers, unique):
    kind = unique("timed")
    now = int(time.time())
    later = jobs.create_job(kind, scheduled_for=now + 3600)
    stale = jobs.create_job(kind, scheduled_for=now - 7200, valid_until=now - 3600)
    ready = jobs.create_job(kind)
    assert lease(runtime, headers, [kind]).json()["id"] == ready["id"]
    assert lease(runtime, headers, [kind]).status_code == 404
    pending = [job["id"] for job in runtime.get("/jobs/pending", params={"limit": "1000"}, headers=headers).json()]
    assert later["id"] in pending and stale["id"] not in pending


def test_job_lists_page_by_created_at(runtime, headers, unique):
    kind = unique("paged")
    created = [jobs.create_job(kind)["id"] for _ in range(3)]
    listed = [
        job
        for job in runtime.get("/jobs/pending", params={"limit": "1000"}, headers=headers).json()
        if job["id"] in created
    ]
    assert [job["id"] for job in listed] == created
    rest = runtime.get(
        "/jobs/pending", params={"limit": "1000", "cursor": listed[0]["createdAt"]}, headers=headers
    ).json()
    assert [job["id"] for job in rest if job["id"] in created] == created[1:]
    assert runtime.get("/jobs/pending", params={"cursor": "nope"}, headers=headers).status_code == 400
    assert runtime.get("/jobs/in-progress", params={"limit": "x"}, headers=headers).status_code == 400
