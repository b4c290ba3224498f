"""Runtime pages cost a page: each listing reads a bounded number of items (botocore hooks,
`aiplane_local.reads`) whether few or many items exist, the hot partitions are sharded, and the
backfill moves older items to the new keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from aiplane import backfill
from aiplane.activity.models import AlertRecord
from aiplane.clock import rfc3339
from aiplane.data.shards import SHARDS, shard_page_size
from aiplane.events import raw, store
from aiplane.events.models import CounterRecord, RawEventRecord, TriggerRecord
from aiplane.files.models import FileNodeRecord, all_nodes_key, children_key, node_key
from aiplane.identity.audit import FAILURE, SUCCESS, day_key
from aiplane.identity.models import AccessEntryRecord, AuthEventRecord
from aiplane_local import seeding
from aiplane_local.reads import counting_reads

SMALL, LARGE = 10, 400
PAGE = 20


@pytest.fixture
def runtime(admin_api_key):
    from functions.family_app import build_family_app

    with TestClient(
        build_family_app("runtime"), raise_server_exceptions=False, headers={"X-API-Key": admin_api_key}
    ) as client:
        yield client


def reads(runtime, route: str, *models, **params) -> tuple[int, list]:
    with counting_reads(*models) as counter:
        response = runtime.get(route, params=params)
        assert response.status_code == 200, response.text
    return counter.items, response.json()


def seed_nodes(parent_id: str | None, count: int, legacy: bool = False) -> list[str]:
    return seeding.file_nodes(
        lambda index: parent_id, count, name_of=lambda index, node_id: f"seed-{index:05d}-{node_id[:8]}", legacy=legacy
    )


def test_files_pages_read_a_page_at_any_size(runtime):
    folder = runtime.post("/folders", json={"name": f"pages-{uuid.uuid4().hex[:8]}"}).json()
    elsewhere = runtime.post("/folders", json={"name": f"other-{uuid.uuid4().hex[:8]}"}).json()
    measured = {}
    for size in (SMALL, LARGE):
        seed_nodes(folder["id"], size // 2)
        seed_nodes(elsewhere["id"], size)
        under, listed = reads(runtime, "/files", FileNodeRecord, path=folder["path"], limit=PAGE)
        everything, _ = reads(runtime, "/files", FileNodeRecord, limit=PAGE)
        measured[size] = (under, everything)
        assert len(listed) == min(PAGE, 1 + len(seed_names(folder)))
    # under a path: the two path segments' claim and node, and the folder's children (a page and one more)
    assert measured[LARGE][0] <= 2 + PAGE + 1
    # every node: the shards' pages (each shard_page_size, then as many as the merge needs) and the parents
    bound = PAGE + 1 + SHARDS * shard_page_size(PAGE + 1) + PAGE
    assert measured[SMALL][1] <= bound and measured[LARGE][1] <= bound


def seed_names(folder: dict) -> list[str]:
    return [node.name for node in FileNodeRecord.by_parent.query(children_key(folder["id"]))]


def test_files_pages_follow_the_cursor_in_tree_order(runtime):
    top = runtime.post("/folders", json={"name": f"tree-{uuid.uuid4().hex[:8]}"}).json()
    a = runtime.post("/folders", json={"name": "a", "parentId": top["id"]}).json()
    runtime.post("/folders", json={"name": "b", "parentId": a["id"]})
    for name, parent in (("a1.txt", a["id"]), ("z.txt", top["id"]), ("c.txt", top["id"])):
        assert (
            runtime.post("/files", files={"file": (name, b"x", "text/plain")}, data={"parentid": parent}).status_code
            == 201
        )
    paths, cursor = [], None
    while True:
        response = runtime.get(
            "/files", params={"path": top["path"], "limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200 and len(response.json()) <= 2
        paths += [item["path"] for item in response.json()]
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            break
    root = top["path"]
    assert paths == [root, f"{root}/a", f"{root}/a/a1.txt", f"{root}/a/b", f"{root}/c.txt", f"{root}/z.txt"]
    # the unfiltered listing pages oldest first through the shards: every node once, in creation order
    seen, cursor = [], None
    for _ in range(3):
        response = runtime.get("/files", params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
        seen += response.json()
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            break
    mine = [item["path"] for item in seen if item["path"].startswith(root)]
    assert sorted(mine) == sorted(paths) and len({item["id"] for item in seen}) == len(seen)
    created = [item["createdAt"] for item in seen]
    assert created == sorted(created)
    bad = runtime.get("/files", params={"path": root, "cursor": "bm90LWpzb24"})
    assert bad.status_code == 400


def test_triggers_of_a_function_read_its_own_triggers(runtime):
    function = f"pages-fn-{uuid.uuid4().hex[:8]}"
    measured = {}
    for size in (SMALL, LARGE):
        seeding.triggers(size, lambda index: function if index < 3 else f"other-{index}", "pages")
        measured[size], listed = reads(runtime, f"/event-triggers/function/{function}", TriggerRecord)
        assert {item["function"] for item in listed} == {function}
    assert measured[SMALL] == 3 and measured[LARGE] == 6  # only this function's triggers, at any total
    first, _ = reads(runtime, f"/event-triggers/function/{function}", TriggerRecord, limit=2)
    assert first == 2


def test_alerts_read_a_page_of_failures_whatever_succeeded(runtime):
    measured = {}
    for size in (SMALL, LARGE):
        seeding.auth_events(size * 5, lambda index: SUCCESS, "seeded")
        seeding.auth_events(size, lambda index: FAILURE, "seeded")
        measured[size], listed = reads(runtime, "/activity/alerts", AuthEventRecord, AlertRecord, limit=PAGE)
        assert len(listed) >= min(size, PAGE)
    print("alerts reads", measured)
    assert measured[SMALL] <= 2 * PAGE and measured[LARGE] <= 2 * PAGE


def test_access_entries_of_an_identity_page_by_creation(runtime):
    identity = f"pages-user-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(hours=1)
    measured = {}
    stamps = []
    for size in (SMALL, LARGE):
        moments = [start + timedelta(seconds=len(stamps) + index) for index in range(size)]
        stamps += [rfc3339(moment) for moment in moments]
        seeding.access_entries(
            size, lambda index: identity, resource_of=lambda index: f"chats{index}", moment_of=moments.__getitem__
        )
        measured[size], listed = reads(
            runtime, "/access-control", AccessEntryRecord, identity=identity, limit=5, **{"from": stamps[2]}
        )
        assert [item["createdAt"] for item in listed] == stamps[3:8]  # `from` is honoured, oldest first
    print("access reads", measured)
    assert measured[SMALL] == measured[LARGE] == 5


def test_raw_events_are_sharded_and_read_a_page(runtime):
    measured = {}
    raw.store_raw_event("/pages", {}, {"n": 1})  # as the route writes one; the rest are seeded in that shape
    for size in (SMALL, LARGE):
        seeding.raw_events(size, "/pages")
        measured[size], listed = reads(runtime, "/raw-events", RawEventRecord, limit=PAGE)
        received = [item["received_at"] for item in listed]
        assert len(listed) >= min(size, PAGE) and received == sorted(received, reverse=True)
    bound = PAGE + SHARDS * shard_page_size(PAGE)
    assert measured[SMALL] <= bound and measured[LARGE] <= bound
    assert len({raw.raw_events_key(item["nid"]) for item in listed}) > 1  # spread over the shards


def test_nids_come_from_sharded_counters_above_the_old_single_counter():
    counter = f"pages-{uuid.uuid4().hex[:8]}"
    CounterRecord("COUNTER", counter, value=1000).save()  # as earlier versions left it
    nids = [store.next_nid(counter) for _ in range(60)]
    assert len(set(nids)) == 60 and min(nids) > 1000
    assert len({nid % SHARDS for nid in nids}) > 1  # spread over several items
    assert CounterRecord.get("COUNTER", counter).value == 1000  # the old item is no longer written


def test_backfill_moves_older_items_to_the_new_keys_once(runtime):
    folder = runtime.post("/folders", json={"name": f"legacy-{uuid.uuid4().hex[:8]}"}).json()
    legacy_nodes = seed_nodes(folder["id"], 3, legacy=True)
    received = rfc3339(datetime.now(UTC))
    RawEventRecord(
        "RAWEVENTS",
        f"{received}#{9999999:020d}",
        gsi1pk="RAWEVENT#9999999",
        gsi1sk=received,
        raw_id="legacy",
        nid=9999999,
        received_at=received,
        path="/legacy",
        headers="{}",
        payload="{}",
    ).save()
    function, name = f"legacy-fn-{uuid.uuid4().hex[:8]}", f"legacy-{uuid.uuid4().hex[:8]}"
    TriggerRecord(
        f"TRIGGER#{name}",
        "META",
        gsi1sk=f"{received}#{name}",
        gsi2pk="TRIGGERTYPE#legacy",
        gsi2sk=name,
        name=name,
        listen_for='{"type": "legacy"}',
        trigger_type="function",
        function=function,
        created_at=received,
        updated_at=received,
        owner_id="admin",
    ).save()
    identity, entry_id = f"legacy-user-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    now = datetime.now(UTC)
    AccessEntryRecord(
        f"ACCESS#{entry_id}",
        "META",
        gsi1pk=f"IDENTITY#{identity}",
        gsi1sk=f"RESOURCE#chats#{entry_id}",
        gsi2sk=f"{rfc3339(now)}#{entry_id}",
        entry_id=entry_id,
        identity=identity,
        resource="chats",
        resource_type="chats",
        permission="view",
        created_at=now,
        updated_at=now,
    ).save()
    failure_id = f"PAGESEED#{uuid.uuid4()}"
    AuthEventRecord(
        failure_id,
        "SEQ#0",
        gsi2pk=day_key(SUCCESS, now),
        gsi2sk=f"{rfc3339(now)}#legacy",
        sequence_num=0,
        prev_hash="",
        event_hash="",
        action="login",
        outcome=FAILURE,
        family="runtime",
        reason="legacy",
        at=now,
    ).save()

    runtime_steps = (
        "files",
        "raw events",
        "event triggers",
        "access entries",
        "auth failures",
    )  # mlworker's: test_migrate
    first = backfill.run()
    assert all(first[step] >= 1 for step in runtime_steps)
    second = backfill.run()
    assert all(second[step] == 0 for step in runtime_steps)  # idempotent: nothing left in the old form

    everything = [item["id"] for item in runtime.get("/files", params={"path": folder["path"]}).json()]
    assert set(legacy_nodes) <= set(everything)
    assert FileNodeRecord.get(node_key(legacy_nodes[0]), "META").gsi2pk == all_nodes_key(legacy_nodes[0])
    moved = RawEventRecord.get(raw.raw_events_key(9999999), f"{received}#{9999999:020d}")
    assert moved.raw_id == "legacy" and not list(RawEventRecord.query("RAWEVENTS"))
    assert [item["name"] for item in runtime.get(f"/event-triggers/function/{function}").json()] == [name]
    assert [item["id"] for item in runtime.get("/access-control", params={"identity": identity}).json()] == [entry_id]
    assert AuthEventRecord.get(failure_id, "SEQ#0").gsi2pk == day_key(FAILURE, now)
