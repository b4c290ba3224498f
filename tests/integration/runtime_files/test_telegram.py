"""Telegram frontends: CRUD, per-user lists, and the bot token only ever in Secrets Manager."""

from __future__ import annotations

from aiplane.data import aws
from aiplane.telegram.frontends import MASK, secret_name
from tests.integration.runtime_files.test_files import assert_error

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
OTHER_TOKEN = "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsbb"
FIELDS = {
    "id",
    "userId",
    "description",
    "botToken",
    "chatChain",
    "syncInterval",
    "lastOffset",
    "status",
    "lastHeartbeat",
    "lastError",
    "createdAt",
    "updatedAt",
}


def stored_token(frontend_id):
    return aws.client("secretsmanager").get_secret_value(SecretId=secret_name(frontend_id))["SecretString"]


def test_crud_keeps_the_token_secret(runtime, unique):
    user = unique("user")
    created = runtime.post(
        "/telegram-frontends",
        json={"userId": user, "botToken": TOKEN, "chatChain": "chat", "description": "support bot"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == FIELDS and body["botToken"] == MASK and body["userId"] == user and body["lastOffset"] == 0
    assert stored_token(body["id"]) == TOKEN
    for response in (
        runtime.get(f"/telegram-frontends/{body['id']}"),
        runtime.get("/telegram-frontends"),
        runtime.get(f"/telegram-frontends/users/{user}"),
    ):
        assert response.status_code == 200 and TOKEN not in response.text and TOKEN.split(":")[1] not in response.text
    assert [item["id"] for item in runtime.get(f"/telegram-frontends/users/{user}").json()] == [body["id"]]

    kept = runtime.put(
        f"/telegram-frontends/{body['id']}", json={"botToken": MASK, "lastOffset": 42, "status": "paused"}
    )
    assert kept.status_code == 200 and kept.json()["lastOffset"] == 42 and kept.json()["description"] == "support bot"
    assert stored_token(body["id"]) == TOKEN
    changed = runtime.put(
        f"/telegram-frontends/{body['id']}", json={"botToken": OTHER_TOKEN, "userId": unique("moved")}
    )
    assert changed.json()["botToken"] == MASK and stored_token(body["id"]) == OTHER_TOKEN
    assert runtime.get(f"/telegram-frontends/users/{user}").json() == []

    assert runtime.delete(f"/telegram-frontends/{body['id']}").json() == "Telegram frontend deleted"
    assert_error(runtime.get(f"/telegram-frontends/{body['id']}"), 404)
    names = [item["Name"] for item in aws.client("secretsmanager").list_secrets()["SecretList"]]
    assert secret_name(body["id"]) not in names


def test_the_caller_is_the_default_user(runtime):
    body = runtime.post("/telegram-frontends", json={"botToken": TOKEN, "chatChain": "chat"}).json()
    assert body["userId"] and runtime.get(f"/telegram-frontends/users/{body['userId']}").status_code == 200
    runtime.delete(f"/telegram-frontends/{body['id']}")


def test_bad_input_is_400_and_stores_nothing(runtime):
    before = len(aws.client("secretsmanager").list_secrets(MaxResults=100)["SecretList"])
    for payload in (
        {"chatChain": "chat"},
        {"botToken": "not-a-token", "chatChain": "chat"},
        {"botToken": TOKEN},
        {"botToken": TOKEN, "chatChain": "chat", "lastOffset": -1},
        {"botToken": TOKEN, "chatChain": "chat", "syncInterval": 0},
    ):
        assert_error(runtime.post("/telegram-frontends", json=payload), 400)
    assert_error(runtime.post("/telegram-frontends", content=b"{", headers={"Content-Type": "application/json"}), 400)
    assert len(aws.client("secretsmanager").list_secrets(MaxResults=100)["SecretList"]) == before
    created = runtime.post("/telegram-frontends", json={"botToken": TOKEN, "chatChain": "chat"}).json()
    assert_error(runtime.put(f"/telegram-frontends/{created['id']}", json={"botToken": "bad", "lastOffset": 5}), 400)
    assert_error(runtime.put(f"/telegram-frontends/{created['id']}", json={"status": "sleeping"}), 400)
    assert runtime.get(f"/telegram-frontends/{created['id']}").json()["lastOffset"] == 0
    assert_error(runtime.put("/telegram-frontends/missing", json={}), 404)
    assert_error(runtime.get("/telegram-frontends", params={"cursor": "soon"}), 400)
    runtime.delete(f"/telegram-frontends/{created['id']}")


def test_list_pages_with_a_createdat_cursor(runtime):
    ids = [
        runtime.post("/telegram-frontends", json={"botToken": TOKEN, "chatChain": f"c{i}"}).json()["id"]
        for i in range(3)
    ]
    everything = runtime.get("/telegram-frontends", params={"limit": "1000"}).json()
    position = [item["id"] for item in everything].index(ids[0])
    after = runtime.get(
        "/telegram-frontends", params={"cursor": everything[position]["createdAt"], "limit": "2"}
    ).json()
    assert [item["id"] for item in after] == ids[1:]
    for frontend_id in ids:
        runtime.delete(f"/telegram-frontends/{frontend_id}")
