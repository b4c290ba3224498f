"""runtime users and access control, and the permission levels none < view < edit < manage."""

from __future__ import annotations

import pytest

from aiplane.errors import ForbiddenError
from aiplane.identity.access import EDIT, MANAGE, NONE, VIEW, Granted, confirm, permission_of, require_permission
from aiplane.identity.models import AccessEntryRecord
from aiplane.identity.principal import ADMIN, USER, Principal
from tests.integration.identity.conftest import STRONG_PASSWORD, unique_email


def grant(runtime, admin, identity: str, resource: str, permission: str, resource_type: str = "collection") -> dict:
    response = runtime.post(
        "/access-control",
        headers=admin,
        json={
            "identity": identity,
            "resource": resource,
            "resourceType": resource_type,
            "permission": permission,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_permissions_are_listed_in_increasing_order(runtime, admin):
    assert runtime.get("/permissions", headers=admin).json() == ["none", "view", "edit", "manage"]


def test_users_crud_as_admin(runtime, admin):
    email = unique_email("crud")
    created = runtime.post(
        "/users",
        headers=admin,
        json={
            "email": email,
            "password": STRONG_PASSWORD,
            "friendlyName": "Crud",
            "allowedResources": [{"name": "backends", "permission": "view", "resourceType": "collection"}],
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["subject"] and user["id"] != user["subject"] and "password" not in user
    assert runtime.get(f"/users/{user['id']}", headers=admin).json() == user
    entries = runtime.get("/access-control", headers=admin, params={"identity": user["id"]}).json()
    assert [(e["resource"], e["permission"]) for e in entries] == [("backends", "view")]

    new_email = unique_email("moved")
    updated = runtime.put(
        f"/users/{user['id']}",
        headers=admin,
        json={"email": new_email, "friendlyName": "Renamed", "password": "ignored-pass-1", "id": "other"},
    )
    assert updated.status_code == 200
    assert updated.json()["email"] == new_email and updated.json()["friendlyName"] == "Renamed"
    assert updated.json()["id"] == user["id"]
    # the old password still logs in with the new email, the old email is free again
    assert runtime.post("/login", json={"email": new_email, "password": STRONG_PASSWORD}).status_code == 200
    assert runtime.post("/register", json={"email": email, "password": STRONG_PASSWORD}).status_code == 201

    taken = runtime.put(f"/users/{user['id']}", headers=admin, json={"email": email})
    assert taken.status_code == 409

    assert runtime.delete(f"/users/{user['id']}", headers=admin).json() == "deleted"
    assert runtime.get(f"/users/{user['id']}", headers=admin).status_code == 404
    assert runtime.get("/access-control", headers=admin, params={"identity": user["id"]}).json() == []
    assert runtime.delete(f"/users/{user['id']}", headers=admin).status_code == 404
    assert runtime.put("/users/missing", headers=admin, json={"friendlyName": "x"}).status_code == 404


def test_create_user_validates_every_grant_before_writing(runtime, admin):
    email = unique_email("twice")
    twice = [{"name": "backends", "permission": "view", "resourceType": "collection"}] * 2
    assert (
        runtime.post(
            "/users", headers=admin, json={"email": email, "password": STRONG_PASSWORD, "allowedResources": twice}
        ).status_code
        == 400
    )
    bad = [{"name": "backends", "permission": "owner", "resourceType": "collection"}]
    assert (
        runtime.post(
            "/users", headers=admin, json={"email": email, "password": STRONG_PASSWORD, "allowedResources": bad}
        ).status_code
        == 400
    )
    assert (
        runtime.post("/register", json={"email": email, "password": STRONG_PASSWORD}).status_code == 201
    )  # nothing was written


def test_users_are_listed_newest_first_with_a_timestamp_cursor(runtime, admin, make_user):
    made = [make_user(f"page{index}") for index in range(3)]
    first = runtime.get("/users", headers=admin, params={"limit": 2}).json()
    assert [user["id"] for user in first] == [made[2].id, made[1].id]
    second = runtime.get("/users", headers=admin, params={"limit": 2, "cursor": first[-1]["createdAt"]}).json()
    assert second[0]["id"] == made[0].id
    assert runtime.get("/users", headers=admin, params={"cursor": "yesterday"}).status_code == 400
    assert runtime.get("/users", headers=admin, params={"limit": "0"}).status_code == 400


def test_a_user_reads_and_updates_itself_but_not_others(runtime, make_user):
    me, other = make_user("self"), make_user("other")
    assert runtime.get(f"/users/{me.id}", headers=me.bearer).status_code == 200
    assert runtime.put(f"/users/{me.id}", headers=me.bearer, json={"friendlyName": "Me"}).json()["friendlyName"] == "Me"
    assert runtime.get(f"/users/{other.id}", headers=me.bearer).status_code == 403
    assert runtime.get("/users", headers=me.bearer).status_code == 403
    assert runtime.delete(f"/users/{me.id}", headers=me.bearer).status_code == 403


def test_view_cannot_write_edit_cannot_delete_manage_can(runtime, admin, make_user):
    viewer, editor, manager = make_user("viewer"), make_user("editor"), make_user("manager")
    grant(runtime, admin, viewer.id, "users", VIEW)
    grant(runtime, admin, editor.id, "users", EDIT)
    grant(runtime, admin, manager.id, "users", MANAGE)
    target = make_user("target")

    def new_user():
        return {"email": unique_email("made"), "password": STRONG_PASSWORD}

    assert runtime.get("/users", headers=viewer.bearer).status_code == 200
    assert runtime.get(f"/users/{target.id}", headers=viewer.bearer).status_code == 200
    assert runtime.post("/users", headers=viewer.bearer, json=new_user()).status_code == 403
    assert runtime.put(f"/users/{target.id}", headers=viewer.bearer, json={"friendlyName": "x"}).status_code == 403
    forbidden = runtime.delete(f"/users/{target.id}", headers=viewer.bearer)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["type"] == "permission_error"

    assert runtime.post("/users", headers=editor.bearer, json=new_user()).status_code == 201
    assert runtime.put(f"/users/{target.id}", headers=editor.bearer, json={"friendlyName": "Edited"}).status_code == 200
    assert runtime.delete(f"/users/{target.id}", headers=editor.bearer).status_code == 403

    assert runtime.delete(f"/users/{target.id}", headers=manager.bearer).status_code == 200


def test_a_grant_on_server_covers_every_resource_and_the_bootstrap_admin_manages_server(make_user, runtime, admin):
    user = make_user("server-wide")
    principal = Principal(id=user.id, kind=USER, credential="jwt")
    assert permission_of(principal, "backends") == NONE
    grant(runtime, admin, user.id, "server", EDIT, "server")
    assert permission_of(principal, "backends") == EDIT
    require_permission(principal, VIEW, "anything")
    with pytest.raises(ForbiddenError):
        require_permission(principal, MANAGE, "backends")
    assert permission_of(Principal(id="admin", kind=ADMIN, credential="api_key"), "server") == MANAGE


def test_a_level_kept_by_admissions_is_looked_up_again_before_it_refuses(make_user, runtime, admin, moved_clock):
    """The gateway's admission confirms a grant (`confirm`) past its lookup's second: a grant raised elsewhere
    meanwhile must not be refused on that kept level."""
    user = make_user("kept")
    principal = Principal(id=user.id, kind=USER, credential="jwt")
    entry = grant(runtime, admin, user.id, "backends", EDIT)
    granted = require_permission(principal, EDIT, "backends")
    assert granted == Granted(user.id, "backends", EDIT, EDIT, f"ACCESS#{entry['id']}")
    moved_clock.advance(2)
    confirm(granted)  # as an admission that found the entry in place
    AccessEntryRecord(granted.entry_pk, "META").update(actions=[AccessEntryRecord.permission.set(MANAGE)])  # elsewhere
    assert permission_of(principal, "backends") == EDIT  # kept
    assert require_permission(principal, MANAGE, "backends") == Granted(
        user.id, "backends", MANAGE, MANAGE, granted.entry_pk
    )


def test_access_control_crud_filters_and_expand(runtime, admin, make_user):
    user = make_user("acl")
    entry = grant(runtime, admin, user.id, "chain-1", VIEW, "chain")
    assert set(entry) >= {"id", "identity", "resource", "resourceType", "permission", "createdAt", "updatedAt"}
    duplicate = runtime.post(
        "/access-control",
        headers=admin,
        json={"identity": user.id, "resource": "chain-1", "resourceType": "chain", "permission": "edit"},
    )
    assert duplicate.status_code == 409

    expanded = runtime.get(f"/access-control/{entry['id']}", headers=admin, params={"expand": "user"}).json()
    assert expanded["identityDetails"]["email"] == user.email
    listed = runtime.get("/access-control", headers=admin, params={"identity": user.id, "expand": "user"}).json()
    assert [e["id"] for e in listed] == [entry["id"]] and listed[0]["identityDetails"]["id"] == user.id
    since = runtime.get("/access-control", headers=admin, params={"from": entry["createdAt"]}).json()
    assert entry["id"] not in [e["id"] for e in since]

    updated = runtime.put(
        f"/access-control/{entry['id']}", headers=admin, json={"id": "ignored", "permission": "manage"}
    )
    assert (
        updated.status_code == 200 and updated.json()["permission"] == "manage" and updated.json()["id"] == entry["id"]
    )
    assert runtime.put(f"/access-control/{entry['id']}", headers=admin, json={"permission": "owner"}).status_code == 400
    assert (
        runtime.put(
            f"/access-control/{entry['id']}", headers=admin, json={"permission": "view", "resource": "chain-2"}
        ).status_code
        == 400
    )
    assert (
        runtime.post(
            "/access-control",
            headers=admin,
            json={"identity": user.id, "resource": "x", "resourceType": "chain", "permission": "root"},
        ).status_code
        == 400
    )
    assert (
        runtime.post(
            "/access-control", headers=admin, json={"resource": "x", "resourceType": "chain", "permission": "view"}
        ).status_code
        == 400
    )

    # the user reads its own entries, not everyone's
    assert runtime.get("/access-control", headers=user.bearer, params={"identity": user.id}).status_code == 200
    assert runtime.get(f"/access-control/{entry['id']}", headers=user.bearer).status_code == 200
    assert runtime.get("/access-control", headers=user.bearer).status_code == 403

    assert runtime.delete(f"/access-control/{entry['id']}", headers=admin).json() == "deleted"
    assert runtime.get(f"/access-control/{entry['id']}", headers=admin).status_code == 404


def test_manage_on_a_resource_delegates_access_to_it_only(runtime, admin, make_user):
    owner, friend = make_user("owner"), make_user("friend")
    grant(runtime, admin, owner.id, "chain-7", MANAGE, "chain")
    shared = runtime.post(
        "/access-control",
        headers=owner.bearer,
        json={"identity": friend.id, "resource": "chain-7", "resourceType": "chain", "permission": "view"},
    )
    assert shared.status_code == 201
    escalate = runtime.post(
        "/access-control",
        headers=owner.bearer,
        json={"identity": owner.id, "resource": "server", "resourceType": "server", "permission": "manage"},
    )
    assert escalate.status_code == 403
    friend_try = runtime.delete(f"/access-control/{shared.json()['id']}", headers=friend.bearer)
    assert friend_try.status_code == 403
    # revoking is immediate
    assert runtime.delete(f"/access-control/{shared.json()['id']}", headers=owner.bearer).status_code == 200
    assert permission_of(Principal(id=friend.id, kind=USER, credential="jwt"), "chain-7") == NONE


def test_deleting_a_user_invalidates_tokens_and_keys_at_once(runtime, admin, make_user, family_clients):
    user = make_user("doomed")
    assert (
        runtime.put(f"/users/{user.id}/families", headers=admin, json={"families": ["runtime", "gpufarm"]}).status_code
        == 200
    )
    key = (
        family_clients["gpufarm"].post("/api/v1/auth/apikey", headers=user.bearer, json={"name": "k"}).json()["api_key"]
    )
    assert runtime.get("/ui/me", headers=user.bearer).status_code == 200
    assert runtime.get("/ui/me", headers={"X-API-Key": key}).status_code == 200
    assert runtime.delete(f"/users/{user.id}", headers=admin).status_code == 200
    assert runtime.get("/ui/me", headers=user.bearer).status_code == 401
    assert runtime.get("/ui/me", headers={"X-API-Key": key}).status_code == 401
    assert runtime.post("/token_refresh", json={"token": user.token}).status_code == 401
    assert runtime.post("/login", json={"email": user.email, "password": user.password}).status_code == 401
