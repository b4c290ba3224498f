"""Pages cost a page: list and count requests read a bounded number of items, counted with a
botocore hook on the mlworker table's calls (authentication's are not counted: they do not
depend on the number of tasks)."""

from __future__ import annotations

from contextlib import contextmanager

from aiplane.mlworker import tasks
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.counters import SHARDS, TaskCountRecord
from aiplane.mlworker.fairshare import UsageRecord
from aiplane.mlworker.models import JupyterServiceRecord, ReservationRecord, TaskRecord, WorkerRecord
from aiplane.mlworker.schemas import CreateTaskRequest

MODELS = (TaskRecord, TaskCountRecord, WorkerRecord, ReservationRecord, JupyterServiceRecord, UsageRecord)


class ItemsRead:
    """Items DynamoDB read from the mlworker table for the calls seen (Query/Scan: ScannedCount;
    GetItem/BatchGetItem: items returned). Every model shares one DynamoDB client, so each call's
    table is noted before it is sent."""

    def __init__(self) -> None:
        self.items = 0

    @staticmethod
    def note_table(params, context, **_) -> None:
        context["aiplane_table"] = params.get("TableName") or next(iter(params.get("RequestItems") or {}), None)

    def __call__(self, parsed, model, context, **_) -> None:
        if context.get("aiplane_table") != TaskRecord.Meta.table_name:
            return
        if model.name in ("Query", "Scan"):
            self.items += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        elif model.name == "GetItem":
            self.items += 1 if parsed.get("Item") else 0
        elif model.name == "BatchGetItem":
            self.items += sum(len(items) for items in parsed.get("Responses", {}).values())


@contextmanager
def counting_reads():
    counter = ItemsRead()
    clients = {model._get_connection().connection.client for model in MODELS}
    for client in clients:
        client.meta.events.register("before-parameter-build.dynamodb", ItemsRead.note_table)
        client.meta.events.register("after-call.dynamodb", counter)
    try:
        yield counter
    finally:
        for client in clients:
            client.meta.events.unregister("before-parameter-build.dynamodb", ItemsRead.note_table)
            client.meta.events.unregister("after-call.dynamodb", counter)


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
