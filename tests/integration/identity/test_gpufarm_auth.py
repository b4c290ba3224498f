"""gpufarm register, login, API keys and account export — over the same identity store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from aiplane.data.models import ApiKeyRecord
from aiplane.identity.api_keys import hash_key, revoke_api_key
from tests.integration.identity.conftest import STRONG_PASSWORD, set_limits, unique_email


def register_and_login(gpufarm, name: str = "Grace") -> tuple[dict, dict]:
    email = unique_email("gpu")
    registered = gpufarm.post("/api/v1/auth/register", json={"email": email, "password": STRONG_PASSWORD, "name": name})
    assert registered.status_code == 201, registered.text
    login = gpufarm.post("/api/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert login.status_code == 200
    return registered.json(), login.json()


def test_register_then_login_gives_access_and_refresh_tokens(family_clients):
    gpufarm = family_clients["gpufarm"]
    registered, login = register_and_login(gpufarm)
    assert set(registered["user"]) == {"id", "email", "name", "created_at"} and registered["user"]["name"] == "Grace"
    assert login["user"] == {"id": registered["user"]["id"], "email": registered["user"]["email"]}
    tokens = login["tokens"]
    assert 86000 < tokens["expires_in"] <= 86400
    assert tokens["access_token"] != tokens["refresh_token"]
    assert (
        gpufarm.get("/api/v1/user/export", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code
        == 200
    )
    # a refresh token is not an access token
    refused = gpufarm.get("/api/v1/user/export", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert refused.status_code == 401 and refused.json()["code"] == "AUTH_INVALID"
    # a gpufarm account signs in to runtime too
    assert (
        family_clients["runtime"]
        .post("/login", json={"email": login["user"]["email"], "password": STRONG_PASSWORD})
        .status_code
        == 200
    )


def test_register_and_login_errors_in_the_gpufarm_envelope(family_clients):
    gpufarm = family_clients["gpufarm"]
    weak = gpufarm.post("/api/v1/auth/register", json={"email": unique_email(), "password": "weak"})
    assert (
        weak.status_code == 400
        and weak.json()["code"] == "VALIDATION_ERROR"
        and weak.json()["details"] == {"field": "password"}
    )
    assert gpufarm.post("/api/v1/auth/register", json={"email": unique_email()}).status_code == 400
    wrong = gpufarm.post("/api/v1/auth/login", json={"email": unique_email(), "password": STRONG_PASSWORD})
    assert wrong.status_code == 401 and wrong.json()["code"] == "AUTH_INVALID"


def test_api_key_is_shown_once_stored_hashed_and_expires(family_clients):
    gpufarm = family_clients["gpufarm"]
    _, login = register_and_login(gpufarm)
    bearer = {"Authorization": f"Bearer {login['tokens']['access_token']}"}
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = gpufarm.post(
        "/api/v1/auth/apikey", headers=bearer, json={"name": "production_api_key", "expires_at": expires.isoformat()}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"api_key", "message", "created_at", "expires_at"}
    assert "not be shown again" in body["message"]
    assert datetime.fromisoformat(body["expires_at"]) == expires

    record = ApiKeyRecord.get(f"APIKEY#{hash_key(body['api_key'])}", "META")
    assert body["api_key"] not in str(record.attribute_values)
    assert record.owner_id == login["user"]["id"]

    # the key works as a bearer credential here (other families: test_cross_family_rights)
    assert gpufarm.get("/api/v1/user/export", headers={"Authorization": f"Bearer {body['api_key']}"}).status_code == 200

    past = gpufarm.post(
        "/api/v1/auth/apikey", headers=bearer, json={"name": "old", "expires_at": "2020-01-01T00:00:00Z"}
    )
    assert past.status_code == 400
    assert gpufarm.post("/api/v1/auth/apikey", headers=bearer, json={"name": " "}).status_code == 400
    assert gpufarm.post("/api/v1/auth/apikey", json={"name": "anon"}).status_code == 401


def test_export_holds_everything_about_the_caller_and_no_secret(family_clients):
    gpufarm = family_clients["gpufarm"]
    registered, login = register_and_login(gpufarm, name="Exporter")
    bearer = {"Authorization": f"Bearer {login['tokens']['access_token']}"}
    key = gpufarm.post("/api/v1/auth/apikey", headers=bearer, json={"name": "for-export"}).json()["api_key"]
    export = gpufarm.get("/api/v1/user/export", headers=bearer)
    assert export.status_code == 200
    document = export.json()
    assert {"user", "api_keys", "usage_quota", "gpu_usage", "transactions", "credits", "exported_at"} <= set(document)
    assert document["user"]["id"] == registered["user"]["id"] and document["user"]["name"] == "Exporter"
    assert [(k["name"], k["prefix"]) for k in document["api_keys"]] == [("for-export", key[:12])]
    assert {(e["action"], e["outcome"]) for e in document["auth_events"]} >= {
        ("register", "success"),
        ("login", "success"),
    }
    text = export.text
    for secret in (key, STRONG_PASSWORD, login["tokens"]["access_token"], "argon2"):
        assert secret not in text


def test_other_domains_add_their_export_sections(family_clients, monkeypatch):
    from aiplane.identity import export

    monkeypatch.setitem(export._PROVIDERS, "credits", lambda user_id: [{"user": user_id, "amount": 5}])
    gpufarm = family_clients["gpufarm"]
    registered, login = register_and_login(gpufarm)
    document = gpufarm.get(
        "/api/v1/user/export", headers={"Authorization": f"Bearer {login['tokens']['access_token']}"}
    ).json()
    assert document["credits"] == [{"user": registered["user"]["id"], "amount": 5}]


def test_owners_list_and_revoke_their_keys_and_nobody_elses(family_clients):
    gpufarm = family_clients["gpufarm"]
    _, login = register_and_login(gpufarm)
    bearer = {"Authorization": f"Bearer {login['tokens']['access_token']}"}
    key = gpufarm.post("/api/v1/auth/apikey", headers=bearer, json={"name": "ci"}).json()["api_key"]
    listed = gpufarm.get("/api/v1/auth/apikey", headers=bearer)
    assert listed.status_code == 200
    [entry] = listed.json()["api_keys"]
    assert (entry["name"], entry["prefix"], entry["revoked"]) == ("ci", key[:12], False)
    assert key not in listed.text and hash_key(key) not in listed.text

    _, other = register_and_login(gpufarm, name="Mallory")
    mallory = {"Authorization": f"Bearer {other['tokens']['access_token']}"}
    assert gpufarm.get("/api/v1/auth/apikey", headers=mallory).json() == {"api_keys": []}
    stolen = gpufarm.delete(f"/api/v1/auth/apikey/{entry['id']}", headers=mallory)
    assert stolen.status_code == 404 and stolen.json()["code"] == "NOT_FOUND"
    assert gpufarm.get("/api/v1/user/export", headers={"Authorization": f"Bearer {key}"}).status_code == 200

    revoked = gpufarm.delete(f"/api/v1/auth/apikey/{entry['id']}", headers=bearer)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert gpufarm.get("/api/v1/user/export", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert gpufarm.get("/api/v1/auth/apikey", headers=bearer).json()["api_keys"][0]["revoked"] is True


def test_keys_per_user_are_capped_even_when_created_at_once(family_clients, monkeypatch):
    """Replays: unlimited API keys could be created per user."""
    cap = 3
    set_limits(monkeypatch, api_keys_per_user=cap)
    gpufarm = family_clients["gpufarm"]
    _, login = register_and_login(gpufarm)
    bearer = {"Authorization": f"Bearer {login['tokens']['access_token']}"}

    def create(index: int) -> int:
        return gpufarm.post("/api/v1/auth/apikey", headers=bearer, json={"name": f"k{index}"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(8)))
    assert statuses.count(201) == cap and set(statuses) == {201, 409}
    refused = gpufarm.post("/api/v1/auth/apikey", headers=bearer, json={"name": "one more"})
    assert refused.status_code == 409 and "at most 3" in refused.json()["error"]
    assert len(gpufarm.get("/api/v1/auth/apikey", headers=bearer).json()["api_keys"]) == cap

    # revoking one (through the route, or any other way) frees its place
    keys = gpufarm.get("/api/v1/auth/apikey", headers=bearer).json()["api_keys"]
    assert gpufarm.delete(f"/api/v1/auth/apikey/{keys[0]['id']}", headers=bearer).status_code == 200
    assert create(100) == 201
    assert create(101) == 409
    record = next(
        ApiKeyRecord.by_owner.query(f"OWNER#{login['user']['id']}", filter_condition=ApiKeyRecord.name == "k100")
    )
    revoke_api_key(record.pk.removeprefix("APIKEY#"))
    assert create(102) == 201
