"""The contract sweep for credentials that were once good: every non-public route answers 401,
in its family's envelope, to an expired token, a revoked key and a deleted user's token (mlworker,
which takes keys only: an expired key, a revoked key, a deleted user's key). The other variants
(cookies, expired keys, deleted users' keys) run on the first route of every resource group, i.e.
once per deployed function: the check is one dependency per app, not per route.
(Missing and wrong credentials: tests/integration/test_contract_surface.py.)
appproxy is left out: its only credentials are the two bootstrap tokens, which never expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiplane.identity.api_keys import hash_key, issue_api_key, revoke_api_key
from aiplane.identity.sessions import issue_session
from aiplane.identity.tokens import issue_token
from aiplane.identity.users import USER_FAMILIES, create_user, delete_user
from aiplane_shared.families import GPUFARM, MLWORKER, RUNTIME
from aiplane_shared.routes import PUBLIC, contract_routes
from tests.integration.identity.conftest import STRONG_PASSWORD, unique_email
from tests.integration.test_contract_surface import assert_envelope, concrete

SWEPT = [r for r in contract_routes() if r.access != PUBLIC and r.family in (RUNTIME, GPUFARM, MLWORKER)]
FIRST_OF_GROUP = {(r.family, r.group): r for r in reversed(SWEPT)}
EVERY_ROUTE = {"expired token", "revoked key", "deleted user's token"}
MLWORKER_EVERY_ROUTE = {"expired key", "revoked key", "deleted user's key"}


@pytest.fixture(scope="module")
def stale_credentials() -> dict[str, dict[str, dict[str, str]]]:
    """Per family, named header sets that must all be refused."""
    live = create_user(unique_email("stale"), STRONG_PASSWORD, families=USER_FAMILIES)
    expired_token = issue_token(live.user_id, ttl=timedelta(seconds=-60))[0]
    expired_key = issue_api_key(live.user_id, "expired", expires_at=datetime.now(UTC) - timedelta(minutes=1)).api_key
    revoked_key = issue_api_key(live.user_id, "revoked").api_key
    revoke_api_key(hash_key(revoked_key))

    gone = create_user(unique_email("gone"), STRONG_PASSWORD, families=USER_FAMILIES)
    gone_token = issue_session(gone).token
    gone_key = issue_api_key(gone.user_id, "orphan").api_key
    delete_user(gone.user_id)

    keys = {"expired key": expired_key, "revoked key": revoked_key, "deleted user's key": gone_key}
    tokens = {"expired token": expired_token, "deleted user's token": gone_token}
    return {
        RUNTIME: {
            **{name: {"X-API-Key": key} for name, key in keys.items()},
            **{name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()},
            **{f"{name} as cookie": {"Cookie": f"auth_token={token}"} for name, token in tokens.items()},
        },
        GPUFARM: {name: {"Authorization": f"Bearer {value}"} for name, value in {**keys, **tokens}.items()},
        MLWORKER: {name: {"X-API-Key": key} for name, key in keys.items()},
    }


@pytest.mark.parametrize("route", SWEPT, ids=lambda r: f"{r.family} {r.method} {r.path}")
def test_stale_credentials_are_refused(family_clients, stale_credentials, route):
    client = family_clients[route.family]
    every_route = MLWORKER_EVERY_ROUTE if route.family == MLWORKER else EVERY_ROUTE
    first_of_group = FIRST_OF_GROUP[(route.family, route.group)] == route
    for name, headers in stale_credentials[route.family].items():
        if name not in every_route and not first_of_group:
            continue
        response = client.request(route.method, concrete(route.path), headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert_envelope(route.family, response.json())


def test_the_credentials_worked_before_they_went_stale(family_clients):
    user = create_user(unique_email("fresh"), STRONG_PASSWORD, families=USER_FAMILIES)
    token = issue_session(user).token
    key = issue_api_key(user.user_id, "fresh").api_key
    runtime = family_clients[RUNTIME]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {token}"}, {"Cookie": f"auth_token={token}"}):
        assert runtime.get("/ui/me", headers=headers).status_code == 200
    revoke_api_key(hash_key(key))
    delete_user(user.user_id)
    assert runtime.get("/ui/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_cached_authorizer_answer_does_not_outlive_a_revoked_key():
    """On Lambda the function gets the authorizer's (possibly cached) principal; an issued key's
    is checked again, the bootstrap admin's is taken as is."""
    import json

    from aiplane_local.lambda_runtime import LocalLambdaContext, load_handler
    from events.generate import EVENTS_DIR

    user = create_user(unique_email("cached"), STRONG_PASSWORD, families=USER_FAMILIES)
    issued = issue_api_key(user.user_id, "cached")
    event = json.loads((EVENTS_DIR / "runtime_auth.json").read_text())  # GET /ui/me
    event["headers"]["X-API-Key"] = issued.api_key
    cached = {"principalId": user.user_id, "kind": "user", "credential": "api_key", "keyId": issued.key_id}
    event["requestContext"]["authorizer"] = cached
    handler = load_handler("runtime_auth")
    assert handler(event, LocalLambdaContext(function_name="runtime_auth"))["statusCode"] == 200
    revoke_api_key(hash_key(issued.api_key))
    assert handler(event, LocalLambdaContext(function_name="runtime_auth"))["statusCode"] == 401
