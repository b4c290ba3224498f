"""A new identity has rights only in the family it signed up through, until an administrator
grants more (docs/identity.md). Replays: a gpufarm self-registered user's key read every user's
mlworker tasks and the audit log, and reserved GPUs."""

from __future__ import annotations

from tests.integration.identity.conftest import STRONG_PASSWORD, unique_email
from tests.integration.identity.test_gpufarm_auth import register_and_login


def gpufarm_user_with_key(gpufarm) -> tuple[str, str, str]:
    """(user id, access token, API key) of a user who signed up through gpufarm."""
    _, login = register_and_login(gpufarm)
    token = login["tokens"]["access_token"]
    key = gpufarm.post("/api/v1/auth/apikey", headers={"Authorization": f"Bearer {token}"}, json={"name": "k"}).json()[
        "api_key"
    ]
    return login["user"]["id"], token, key


def test_a_gpufarm_sign_up_has_no_rights_on_mlworker_or_runtime(family_clients):
    gpufarm, mlworker, runtime = family_clients["gpufarm"], family_clients["mlworker"], family_clients["runtime"]
    _, token, key = gpufarm_user_with_key(gpufarm)
    assert gpufarm.get("/api/v1/user/export", headers={"Authorization": f"Bearer {key}"}).status_code == 200

    for method, path, body in (
        ("GET", "/v1/tasks", None),
        ("GET", "/v1/audit/events", None),
        ("POST", "/v1/scheduler/reservations", {"gpu_count": 1, "duration_hours": 168}),
        ("POST", "/v1/tasks", {"job_name": "x"}),
    ):
        refused = mlworker.request(method, path, headers={"X-API-Key": key}, json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["code"] == "FORBIDDEN" and "mlworker" in refused.json()["error"]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {token}"}):
        refused = runtime.get("/ui/me", headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error", refused.text


def test_a_runtime_sign_up_has_no_rights_on_gpufarm(family_clients):
    runtime, gpufarm = family_clients["runtime"], family_clients["gpufarm"]
    token = runtime.post("/register", json={"email": unique_email(), "password": STRONG_PASSWORD}).json()["token"]
    assert runtime.get("/ui/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    refused = gpufarm.get("/api/v1/gpu/instances", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"


def test_only_an_administrator_grants_another_family(family_clients, admin_api_key):
    gpufarm, mlworker, runtime = family_clients["gpufarm"], family_clients["mlworker"], family_clients["runtime"]
    user_id, token, key = gpufarm_user_with_key(gpufarm)
    # the user cannot grant themselves (their token has no runtime rights; a runtime account's neither)
    assert (
        runtime.put(
            f"/users/{user_id}/families", headers={"X-API-Key": key}, json={"families": ["mlworker"]}
        ).status_code
        == 403
    )
    runtime_user = runtime.post("/register", json={"email": unique_email(), "password": STRONG_PASSWORD}).json()
    own = runtime.put(
        f"/users/{runtime_user['user']['id']}/families",
        headers={"Authorization": f"Bearer {runtime_user['token']}"},
        json={"families": ["runtime", "mlworker"]},
    )
    assert own.status_code == 403

    admin = {"X-API-Key": admin_api_key}
    assert runtime.put(f"/users/{user_id}/families", headers=admin, json={"families": ["bogus"]}).status_code == 400
    granted = runtime.put(f"/users/{user_id}/families", headers=admin, json={"families": ["gpufarm", "mlworker"]})
    assert granted.status_code == 200 and granted.json() == {"id": user_id, "families": ["gpufarm", "mlworker"]}
    assert mlworker.get("/v1/tasks", headers={"X-API-Key": key}).status_code == 200
    assert runtime.get("/ui/me", headers={"Authorization": f"Bearer {token}"}).status_code == 403  # not granted
    # and taken away again
    assert runtime.put(f"/users/{user_id}/families", headers=admin, json={"families": []}).json()["families"] == []
    assert gpufarm.get("/api/v1/user/export", headers={"Authorization": f"Bearer {key}"}).status_code == 403
    assert runtime.put("/users/nobody/families", headers=admin, json={"families": ["runtime"]}).status_code == 404


def test_admin_keys_keep_every_family(family_clients, admin_api_key):
    assert family_clients["mlworker"].get("/v1/tasks", headers={"X-API-Key": admin_api_key}).status_code == 200
    assert (
        family_clients["gpufarm"]
        .get("/api/v1/gpu/instances", headers={"Authorization": f"Bearer {admin_api_key}"})
        .status_code
        == 200
    )
    assert family_clients["runtime"].get("/users", headers={"X-API-Key": admin_api_key}).status_code == 200
