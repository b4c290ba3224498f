"""Pages cost a page: list and count requests read a bounded number of items, counted with a
botocore hook on the mlworker table's calls (authentication's are not counted: they do not
depend on the number of tasks)."""

from __future__ import annotations

from aiplane.mlworker import tasks
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.counters import SHARDS, TaskCountRecord
from aiplane.mlworker.fairshare import UsageRecord
from aiplane.mlworker.models import JupyterServiceRecord, ReservationRecord, TaskRecord, WorkerRecord
from aiplane.mlworker.schemas import CreateTaskRequest
from aiplane_local.reads import counting_reads as counting_reads_on

MODELS = (TaskRecord, TaskCountRecord, WorkerRecord, ReservationRecord, JupyterServiceRecord, UsageRecord)


def counting_reads():
    return counting_reads_on(*MODELS)


def seed(count: int, user_id: str) -> None:
    for index in range(count):
        tasks.create_task(CreateTaskRequest(job_name=f"seed-{index}"), Actor(user_id=user_id))


def reads(client, headers, path: str, **params) -> int:
    with counting_reads() as counter:
        response = client.get(path, headers=headers, params=params)
        assert response.status_code == 200, response.text
    return counter.items


def test_list_and_count_requests_read_the_same_few_items_at_any_size(client, admin, user_headers):
    me = client.get("/v1/tasks", headers=user_headers, params={"limit": 1}).json()  # warm the clients
    assert me["total"] == 0
    small, large = {}, {}
    for sizes, count in ((small, 5), (large, 60)):
        owner = client.post("/v1/tasks", headers=user_headers, json={"job_name": "mine"}).json()["user_id"]
        seed(count, owner)
        sizes["admin page"] = reads(client, admin, "/v1/tasks", limit=1)
        sizes["admin status page"] = reads(client, admin, "/v1/tasks", limit=1, status="queued")
        sizes["user page"] = reads(client, user_headers, "/v1/tasks", limit=1)
        sizes["status"] = reads(client, admin, "/v1/scheduler/status")
    # A page of 1 reads 1 task plus the count items (at most SHARDS shards, or the user's one).
    for sizes in (small, large):
        assert sizes["admin page"] <= 1 + SHARDS and sizes["admin status page"] <= 1 + SHARDS, sizes
        assert sizes["user page"] == 2 and sizes["status"] <= SHARDS, sizes
    listed = client.get("/v1/tasks", headers=user_headers, params={"limit": 2, "offset": 1}).json()
    assert listed["total"] == 67 and len(listed["tasks"]) == 2
    assert client.get("/v1/queue", headers=admin).json()["queued"] == 67


def queue_walk(client, headers, limit: int) -> tuple[list[tuple[int, str]], list[int]]:
    """Every page of /v1/queue: the (position, id) listed, and the items each page read."""
    listed, costs, cursor = [], [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        with counting_reads() as counter:
            page = client.get("/v1/queue", headers=headers, params=params)
        assert page.status_code == 200, page.text
        costs.append(counter.items)
        listed += [(entry["position"], entry["id"]) for entry in page.json()["queue"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return listed, costs


def test_the_queue_reads_a_page_and_its_cursor_walks_it_in_scheduling_order(client, admin, user_headers):
    own = client.post("/v1/tasks", headers=user_headers, json={"job_name": "mine", "priority": 1}).json()["id"]
    for index in range(40):
        tasks.create_task(CreateTaskRequest(job_name=f"q-{index}", priority=1 + index % 10), Actor(user_id="someone"))
    first = client.get("/v1/queue", headers=admin, params={"limit": 5}).json()
    assert {key: first[key] for key in ("queued", "running", "completed", "failed")} == {
        "queued": 41,
        "running": 0,
        "completed": 0,
        "failed": 0,
    }
    listed, costs = queue_walk(client, admin, 5)
    # A page of 5 reads 5 tasks, the counters (≤ SHARDS shards, the hour buckets) and the page users' usage.
    assert max(costs) <= 5 + SHARDS + 2 + 2, costs
    every = [task for task in TaskRecord.by_status.query("TASKSTATUS#queued")]
    expected = sorted(every, key=lambda task: (-int(task.priority), task.created_at))
    assert listed == [(position, task.task_id) for position, task in enumerate(expected, start=1)]
    # A user's page lists only their own tasks, with their place in the whole queue.
    mine, _ = queue_walk(client, user_headers, 10)
    assert mine == [(position, task.task_id) for position, task in enumerate(expected, start=1) if task.task_id == own]
    assert mine[0][0] == 37  # behind every higher priority, first of the priority-1 tasks (FIFO)


def test_a_bad_queue_cursor_is_400(client, admin):
    for bad in ("not-a-cursor", "eyJ4IjoxfQ"):  # garbage; valid base64 JSON without a position
        response = client.get("/v1/queue", headers=admin, params={"cursor": bad})
        assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"


def audit_reads(client, admin, **params) -> tuple[dict, int]:
    with counting_reads() as counter:
        response = client.get("/v1/audit/events", headers=admin, params=params)
        assert response.status_code == 200, response.text
    return response.json(), counter.items


def test_audit_pages_read_a_page_at_any_size_and_cursors_walk_the_log(client, admin):
    costs = {}
    for size, more in ((5, 5), (60, 55)):
        seed(more, "auditor")  # one event each
        _, costs[size] = audit_reads(client, admin, limit=3)
        _, costs[f"{size} filtered"] = audit_reads(client, admin, limit=3, event_type="file_access")
    assert costs[5] <= 3 + SHARDS and costs[60] <= 3 + SHARDS, costs  # a page, and the shard heads for total
    assert costs["5 filtered"] == costs["60 filtered"] <= 3, costs  # one request: what the filter read
    seen, cursor = [], None
    while True:
        page, _ = audit_reads(client, admin, limit=7, **({"cursor": cursor} if cursor else {}))
        assert page["total"] == 60
        seen += [event["sequence_num"] for event in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(1, 61))
    middle = client.get("/v1/audit/events", headers=admin, params={"limit": 1000}).json()["events"][20:30]
    window, _ = audit_reads(client, admin, **{"from": middle[0]["timestamp"], "to": middle[-1]["timestamp"]})
    assert [event["sequence_num"] for event in window["events"]] == list(range(21, 31)) and "total" not in window
    response = client.get("/v1/audit/events", headers=admin, params={"offset": 10_001})
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"
