"""Runtime items belong to someone: the attacks of the security review, replayed. A group grant
(`chats`, `files`, ...) no longer reaches another user's items; an access entry grants exactly
the one item it names; triggered functions act with their owner's rights."""

from __future__ import annotations

import uuid

import pytest

from aiplane.chains import store
from aiplane.errors import ConflictError
from aiplane.events import triggers
from aiplane.events.functions import get_trigger
from aiplane.identity.access import NONE, VIEW, permission_of
from aiplane.identity.principal import USER, Principal
from tests.integration.identity.test_users_and_access import grant

BOT_TOKEN = "123456789:" + "A" * 35


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def upload(runtime, user, name: str, parent: str | None = None):
    data = {"name": name, **({"parentid": parent} if parent else {})}
    return runtime.post(
        "/files", headers=user.bearer, files={"file": (name, b"secret of " + name.encode(), "text/plain")}, data=data
    )


def listed_ids(runtime, user) -> set[str]:
    """Every node GET /files shows the user, following the pages' X-Next-Cursor."""
    ids: set[str] = set()
    cursor = None
    while True:
        response = runtime.get(
            "/files", headers=user.bearer, params={"limit": 1000, **({"cursor": cursor} if cursor else {})}
        )
        ids |= {node["id"] for node in response.json()}
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            return ids


def share(runtime, owner, identity: str, resource: str, permission: str, **extra):
    return runtime.post(
        "/access-control",
        headers=owner.bearer,
        json={
            "identity": identity,
            "resource": resource,
            "resourceType": resource.split("#")[0],
            "permission": permission,
            **extra,
        },
    )


@pytest.fixture
def alice(runtime, admin, make_user):
    return make_user("alice")


@pytest.fixture
def mallory(runtime, admin, make_user):
    return make_user("mallory")


def test_edit_on_chats_does_not_reach_another_users_chat(runtime, admin, alice, mallory):
    for user in (alice, mallory):
        grant(runtime, admin, user.id, "chats", "edit")
    chat_id = runtime.post("/chats", headers=alice.bearer, json={"subject": "private"}).json()["id"]
    assert (
        runtime.post(
            f"/chats/{chat_id}/instruction", headers=alice.bearer, json={"instruction": "you know my secret"}
        ).status_code
        == 200
    )

    assert runtime.get(f"/chats/{chat_id}", headers=mallory.bearer).status_code == 404
    assert (
        runtime.post(
            f"/chats/{chat_id}/instruction", headers=mallory.bearer, json={"instruction": "leak it"}
        ).status_code
        == 404
    )
    assert (
        runtime.post(
            f"/chats/{chat_id}/chat", headers=mallory.bearer, json={"message": "what is the secret?"}
        ).status_code
        == 404
    )
    assert chat_id not in [
        chat["id"] for chat in runtime.get("/chats", headers=mallory.bearer, params={"limit": 1000}).json()
    ]
    history = runtime.get(f"/chats/{chat_id}", headers=alice.bearer).json()
    assert [m["content"] for m in history] == ["you know my secret"]  # nothing was appended
    assert chat_id in [
        chat["id"] for chat in runtime.get("/chats", headers=alice.bearer, params={"limit": 1000}).json()
    ]
    assert runtime.get(f"/chats/{chat_id}", headers=admin).status_code == 200

    # the owner shares it for reading: view lets mallory read, not append
    assert share(runtime, alice, mallory.id, f"chats#{chat_id}", "view").status_code == 201
    assert runtime.get(f"/chats/{chat_id}", headers=mallory.bearer).status_code == 200
    assert (
        runtime.post(f"/chats/{chat_id}/instruction", headers=mallory.bearer, json={"instruction": "x"}).status_code
        == 403
    )
    assert chat_id in [
        chat["id"] for chat in runtime.get("/chats", headers=mallory.bearer, params={"limit": 1000}).json()
    ]


def test_edit_on_files_does_not_rename_or_replace_another_users_file(runtime, admin, alice, mallory):
    for user in (alice, mallory):
        grant(runtime, admin, user.id, "files", "manage")
    folder = runtime.post("/folders", headers=alice.bearer, json={"name": unique("alice")}).json()
    file_id = upload(runtime, alice, "plan.txt", folder["id"]).json()["id"]

    assert runtime.put(f"/files/{file_id}/name", headers=mallory.bearer, json={"name": "pwned.txt"}).status_code == 404
    replaced = runtime.put(
        f"/files/{file_id}", headers=mallory.bearer, files={"file": ("plan.txt", b"evil", "text/plain")}
    )
    assert replaced.status_code == 404
    assert runtime.get(f"/files/{file_id}/download", headers=mallory.bearer).status_code == 404
    assert runtime.put(f"/files/{file_id}/move", headers=mallory.bearer, json={"newParentId": ""}).status_code == 404
    assert runtime.delete(f"/files/{file_id}", headers=mallory.bearer).status_code == 404
    assert runtime.delete(f"/folders/{folder['id']}", headers=mallory.bearer).status_code == 404
    assert upload(runtime, mallory, "planted.txt", folder["id"]).status_code == 404  # writing into her folder
    listed = listed_ids(runtime, mallory)
    assert file_id not in listed and folder["id"] not in listed

    content = runtime.get(f"/files/{file_id}/download", headers=alice.bearer)
    assert content.content == b"secret of plan.txt"
    assert runtime.get(f"/files/{file_id}", headers=alice.bearer).json()["name"] == "plan.txt"
    assert runtime.get(f"/files/{file_id}", headers=admin).status_code == 200


def test_a_grant_on_one_file_is_not_a_grant_on_files(runtime, admin, alice, mallory):
    grant(runtime, admin, alice.id, "files", "edit")
    shared = upload(runtime, alice, unique("shared")).json()["id"]
    private = upload(runtime, alice, unique("private")).json()["id"]
    assert share(runtime, alice, mallory.id, f"files#{shared}", "view").status_code == 201

    # the prefix match is gone: files#<id> is not `files`
    principal = Principal(id=mallory.id, kind=USER, credential="jwt")
    assert permission_of(principal, "files") == NONE and permission_of(principal, f"files#{shared}") == VIEW
    assert runtime.get("/files", headers=mallory.bearer).status_code == 403

    grant(runtime, admin, mallory.id, "files", "view")  # may use the files group: sees only what is shared with her
    listed = listed_ids(runtime, mallory)
    assert shared in listed and private not in listed
    assert runtime.get(f"/files/{shared}", headers=mallory.bearer).status_code == 200
    assert runtime.get(f"/files/{private}", headers=mallory.bearer).status_code == 404


def test_file_details_name_the_file_of_a_grant(runtime, admin, alice, mallory):
    grant(runtime, admin, alice.id, "files", "edit")
    folder = runtime.post("/folders", headers=alice.bearer, json={"name": unique("docs")}).json()
    file_id = upload(runtime, alice, "report.txt", folder["id"]).json()["id"]

    created = runtime.post(
        "/access-control",
        headers=alice.bearer,
        json={"identity": mallory.id, "permission": "view", "fileDetails": {"path": f"/{folder['name']}/report.txt"}},
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["resource"] == f"files#{file_id}" and entry["resourceType"] == "files"
    assert entry["fileDetails"] == {
        "id": file_id,
        "name": "report.txt",
        "path": f"/{folder['name']}/report.txt",
        "type": "file",
    }
    assert runtime.get(f"/access-control/{entry['id']}", headers=mallory.bearer).json()["fileDetails"]["id"] == file_id

    grant(runtime, admin, mallory.id, "files", "view")
    assert runtime.get(f"/files/{file_id}", headers=mallory.bearer).status_code == 200
    assert runtime.get(f"/files/{folder['id']}", headers=mallory.bearer).status_code == 404  # the folder is not shared

    def refused(**body):
        return runtime.post(
            "/access-control", headers=alice.bearer, json={"identity": mallory.id, "permission": "edit", **body}
        ).status_code

    assert refused(resource=f"files#{folder['id']}", fileDetails={"id": file_id}) == 400  # two different items
    assert refused(resource=f"files#{file_id}", resourceType="chats") == 400
    assert refused(resource="widgets#1", resourceType="widgets") == 400
    assert refused(fileDetails={"path": "/no/such/file"}) == 404


def test_only_an_items_owner_or_an_admin_shares_it(runtime, admin, alice, mallory):
    grant(runtime, admin, alice.id, "chats", "edit")
    grant(runtime, admin, mallory.id, "chats", "manage")
    chat_id = runtime.post("/chats", headers=alice.bearer, json={}).json()["id"]
    assert share(runtime, mallory, mallory.id, f"chats#{chat_id}", "manage").status_code == 404
    assert share(runtime, mallory, mallory.id, "chats#no-such-chat", "manage").status_code == 404
    entry = runtime.post(
        "/access-control",
        headers=admin,
        json={"identity": mallory.id, "resource": f"chats#{chat_id}", "resourceType": "chats", "permission": "edit"},
    )
    assert entry.status_code == 201
    assert runtime.delete(f"/access-control/{entry.json()['id']}", headers=alice.bearer).json() == "deleted"


ITEMS = {
    # kind: (group, create (path, body), id field, read path, list path)
    "functions": (
        "functions",
        ("/functions", lambda n: {"name": n, "script": "1"}),
        "name",
        "/functions/{}",
        "/functions",
    ),
    "event-triggers": (
        "functions",
        ("/event-triggers", lambda n: {"name": n, "listenFor": {"type": n}, "function": n}),
        "name",
        "/event-triggers/{}",
        "/event-triggers",
    ),
    "hooks": (
        "hooks",
        (
            "/hooks/remote",
            lambda n: {
                "name": n,
                "endpointUrl": "http://127.0.0.1:9/hook",
                "headers": {"Authorization": "Bearer s3cret"},
            },
        ),
        "id",
        "/hooks/remote/{}",
        "/hooks/remote",
    ),
    "chains": (
        "chains",
        ("/taskchains", lambda n: {"id": n, "tasks": [{"id": "a", "handler": "noop"}]}),
        "id",
        "/taskchains/{}",
        "/taskchains",
    ),
    "telegram": (
        "telegram",
        ("/telegram-frontends", lambda n: {"botToken": BOT_TOKEN, "chatChain": n}),
        "id",
        "/telegram-frontends/{}",
        "/telegram-frontends",
    ),
}


@pytest.mark.parametrize("kind", ITEMS)
def test_items_are_seen_and_changed_only_by_their_owner(runtime, admin, alice, mallory, kind):
    group, (path, body), id_field, read_path, list_path = ITEMS[kind]
    for user in (alice, mallory):
        grant(runtime, admin, user.id, group, "manage")
    created = runtime.post(path, headers=alice.bearer, json=body(unique("item")))
    assert created.status_code == 201, created.text
    item_id = created.json()[id_field]
    item = read_path.format(item_id)

    assert runtime.get(item, headers=alice.bearer).status_code == 200
    assert runtime.get(item, headers=admin).status_code == 200
    assert runtime.get(item, headers=mallory.bearer).status_code == 404
    assert runtime.put(item, headers=mallory.bearer, json=body(item_id)).status_code == 404
    assert runtime.delete(item, headers=mallory.bearer).status_code == 404
    seen = [entry[id_field] for entry in runtime.get(list_path, headers=mallory.bearer, params={"limit": 1000}).json()]
    assert item_id not in seen
    assert item_id in [
        entry[id_field] for entry in runtime.get(list_path, headers=alice.bearer, params={"limit": 1000}).json()
    ]

    assert share(runtime, alice, mallory.id, f"{kind}#{item_id}", "view").status_code == 201
    assert runtime.get(item, headers=mallory.bearer).status_code == 200
    assert runtime.delete(item, headers=mallory.bearer).status_code == 403
    assert runtime.delete(item, headers=alice.bearer).status_code == 200


def test_by_name_and_by_user_lookups_hide_other_users_items(runtime, admin, alice, mallory):
    for user in (alice, mallory):
        grant(runtime, admin, user.id, "hooks", "view")
        grant(runtime, admin, user.id, "telegram", "edit")
        grant(runtime, admin, user.id, "functions", "edit")
    hook = store.create_hook({"name": unique("hook"), "endpointUrl": "http://127.0.0.1:9/h"}, alice.id)
    assert runtime.get(f"/hooks/remote/by-name/{hook['name']}", headers=mallory.bearer).status_code == 404
    assert runtime.get(f"/hooks/remote/by-name/{hook['name']}", headers=alice.bearer).status_code == 200

    assert (
        runtime.post(
            "/telegram-frontends", headers=alice.bearer, json={"botToken": BOT_TOKEN, "chatChain": "c"}
        ).status_code
        == 201
    )
    assert runtime.get(f"/telegram-frontends/users/{alice.id}", headers=mallory.bearer).json() == []
    planted = runtime.post(
        "/telegram-frontends",
        headers=mallory.bearer,
        json={"userId": alice.id, "botToken": BOT_TOKEN, "chatChain": "c"},
    )
    assert planted.status_code == 403  # only an admin sets another user's id

    event_type = unique("type")
    runtime.post(
        "/event-triggers",
        headers=alice.bearer,
        json={"name": unique("t"), "listenFor": {"type": event_type}, "function": "f"},
    )
    assert runtime.get(f"/event-triggers/event-type/{event_type}", headers=mallory.bearer).json() == []
    assert len(runtime.get(f"/event-triggers/event-type/{event_type}", headers=alice.bearer).json()) == 1


def test_items_made_before_owners_were_recorded_are_the_admins(runtime, admin, mallory):
    grant(runtime, admin, mallory.id, "chats", "manage")
    legacy = store.create_chat("from before")  # no owner recorded
    assert runtime.get(f"/chats/{legacy['id']}", headers=mallory.bearer).status_code == 404
    assert runtime.get(f"/chats/{legacy['id']}", headers=admin).status_code == 200


def _event(event_type: str) -> dict:
    return {"id": str(uuid.uuid4()), "event_type": event_type, "aggregate_type": "test", "aggregate_id": "a1"}


def test_a_triggered_function_acts_with_its_owners_rights_never_more(runtime, admin, alice, mallory):
    grant(runtime, admin, alice.id, "functions", "edit")
    event_type, sent_type = unique("in"), unique("out")
    function, trigger = unique("fn"), unique("tr")
    script = f"sendEvent('{sent_type}', {{n: 1}}).event_type"
    assert (
        runtime.post("/functions", headers=alice.bearer, json={"name": function, "script": script}).status_code == 201
    )
    assert (
        runtime.post(
            "/event-triggers",
            headers=alice.bearer,
            json={"name": trigger, "listenFor": {"type": event_type}, "function": function},
        ).status_code
        == 201
    )

    # alice may not append events through the API, so neither may her function
    run = triggers.run_trigger(get_trigger(trigger), _event(event_type), 0)
    assert run.status == "error" and "'events'" in run.error
    assert runtime.get("/events/type", headers=admin, params={"event_type": sent_type}).json() == []

    grant(runtime, admin, alice.id, "events", "edit")
    run = triggers.run_trigger(get_trigger(trigger), _event(event_type), 0)
    assert run.status == "ok" and run.result == sent_type

    # a stored chain she cannot see cannot be run through executeTaskChain either
    grant(runtime, admin, alice.id, "chains", "edit")
    hidden = unique("chain")
    assert (
        runtime.post(
            "/taskchains", headers=admin, json={"id": hidden, "tasks": [{"id": "a", "handler": "noop"}]}
        ).status_code
        == 201
    )
    chain_function = unique("fn")
    runtime.post(
        "/functions",
        headers=alice.bearer,
        json={"name": chain_function, "script": f"executeTaskChain('{hidden}', 'x')"},
    )
    chain_trigger = unique("tr")
    runtime.post(
        "/event-triggers",
        headers=alice.bearer,
        json={"name": chain_trigger, "listenFor": {"type": event_type}, "function": chain_function},
    )
    run = triggers.run_trigger(get_trigger(chain_trigger), _event(event_type), 0)
    assert run.status == "error" and "not found" in run.error


def test_a_trigger_runs_only_functions_its_owner_may_see(runtime, admin, alice, mallory):
    for user in (alice, mallory):
        grant(runtime, admin, user.id, "functions", "edit")
    function, trigger = unique("fn"), unique("tr")
    assert runtime.post("/functions", headers=alice.bearer, json={"name": function, "script": "42"}).status_code == 201
    assert (
        runtime.post(
            "/event-triggers",
            headers=mallory.bearer,
            json={"name": trigger, "listenFor": {"type": unique("t")}, "function": function},
        ).status_code
        == 201
    )
    run = triggers.run_trigger(get_trigger(trigger), _event("t"), 0)
    assert run.status == "error" and "may not run" in run.error

    assert share(runtime, alice, mallory.id, f"functions#{function}", "view").status_code == 201
    assert triggers.run_trigger(get_trigger(trigger), _event("t"), 0).result == 42


def test_concurrent_hook_renames_leave_one_name(runtime, monkeypatch):
    hook = store.create_hook({"name": unique("first"), "endpointUrl": "http://127.0.0.1:9/h"})
    stale = store._hook_record(hook["id"])  # what a second, concurrent rename read
    renamed = store.update_hook(hook["id"], {**hook, "name": unique("second")})

    monkeypatch.setattr(store, "_hook_record", lambda *args, **kwargs: stale)
    with pytest.raises(ConflictError):
        store.update_hook(hook["id"], {**hook, "name": unique("third")})
    with pytest.raises(ConflictError):
        store.delete_hook(hook["id"])
    monkeypatch.undo()

    assert store.get_hook(hook["id"])["name"] == renamed["name"]
    assert store.find_hook_by_name(renamed["name"])["id"] == hook["id"]
    assert store.find_hook_by_name(hook["name"]) is None
    assert [name for name in store.list_hook_names() if name in (hook["name"], renamed["name"])] == [renamed["name"]]


def test_a_chain_cannot_call_another_users_hook(runtime, admin, alice, mallory):
    from tests.integration.chains.stand_ins import StandInServer
    from tests.integration.chains.test_hooks_and_chats import hook_server_responder

    server = StandInServer(hook_server_responder)
    try:
        for user in (alice, mallory):
            for group, level in (("chains", "edit"), ("hooks", "edit"), ("exec", "view")):
                grant(runtime, admin, user.id, group, level)
        hook = runtime.post(
            "/hooks/remote",
            headers=alice.bearer,
            json={
                "name": unique("h"),
                "endpointUrl": server.url + "/legacy",
                "headers": {"Authorization": "Bearer alices-secret"},
            },
        ).json()
        chain = {
            "input": "ping",
            "inputType": "string",
            "chain": {
                "id": "h",
                "tasks": [
                    {
                        "id": "call",
                        "handler": "hook",
                        "hook": {"name": hook["name"]},
                        "transition": {"branches": [{"operator": "default", "goto": "end"}]},
                    }
                ],
            },
        }

        assert runtime.post("/tasks", headers=mallory.bearer, json=chain).status_code == 400  # unknown hook
        assert not server.requests  # her URL and credentials were never used
        assert hook["name"] not in runtime.get("/supported", headers=mallory.bearer).json()
        assert hook["name"] not in runtime.get("/hooks/schemas", headers=mallory.bearer).json()

        ran = runtime.post("/tasks", headers=alice.bearer, json=chain)
        assert ran.status_code == 200 and ran.json()["output"].startswith("legacy got ping")
        assert hook["name"] in runtime.get("/supported", headers=alice.bearer).json()
    finally:
        server.stop()


def test_presigned_uploads_keep_ownership(runtime, admin, alice, mallory):
    import httpx

    for user in (alice, mallory):
        grant(runtime, admin, user.id, "files", "manage")
    folder = runtime.post("/folders", headers=alice.bearer, json={"name": unique("alice")}).json()
    announce = {"name": "big.bin", "parentId": folder["id"], "size": 4}
    assert runtime.post("/files", headers=mallory.bearer, json=announce).status_code == 404  # not into her folder
    file_id = upload(runtime, alice, "plan.txt", folder["id"]).json()["id"]
    assert runtime.put(f"/files/{file_id}", headers=mallory.bearer, json={"size": 4}).status_code == 404

    announced = runtime.post("/files", headers=alice.bearer, json=announce).json()
    assert (
        httpx.post(
            announced["upload"]["url"], data=announced["upload"]["fields"], files={"file": ("b", b"1234")}
        ).status_code
        == 204
    )
    assert (
        runtime.post(f"/files/{announced['id']}/complete", headers=mallory.bearer).status_code == 404
    )  # only its announcer
    completed = runtime.post(f"/files/{announced['id']}/complete", headers=alice.bearer)
    assert completed.status_code == 200, completed.text
    assert runtime.get(f"/files/{announced['id']}", headers=mallory.bearer).status_code == 404  # alice's file
    assert runtime.get(f"/files/{announced['id']}/download", headers=alice.bearer).content == b"1234"
