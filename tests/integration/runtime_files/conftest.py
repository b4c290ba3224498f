"""Fixtures for the runtime files, search, telegram, activity and system tests."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from aiplane.gateway import routing
from tests.integration.gateway.conftest import Gateway
from tests.integration.runtime_files.embeddings_standin import EmbeddingsStandIn


@pytest.fixture
def runtime(admin_api_key):
    """The runtime family app as the local server mounts it, called with the admin key."""
    from functions.family_app import build_family_app

    with TestClient(
        build_family_app("runtime"), raise_server_exceptions=False, headers={"X-API-Key": admin_api_key}
    ) as client:
        yield client


@pytest.fixture
def unique():
    return lambda stem: f"{stem}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def folder(runtime, unique):
    """A fresh top-level folder per test, so tests never collide on names."""
    response = runtime.post("/folders", json={"name": unique("t")})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def embedder():
    standin = EmbeddingsStandIn()
    yield standin
    standin.stop()


@pytest.fixture
def searcher(runtime, embedder, unique, set_setting, admin_api_key):
    """A fresh user (so its index starts empty) with a key allowed to search, and the embed model routed."""
    routing.reset_cooldowns()
    gateway = Gateway(runtime)
    model = unique("embed")
    backend_id = gateway.backend(unique("b"), embedder.url)
    group_id = gateway.group(unique("g"), purpose="Internal Embeddings")
    model_id = gateway.model(model, canChat=False, canPrompt=False, canStream=False, canEmbed=True)
    gateway.join(group_id, backends=(backend_id,), models=(model_id,))
    set_setting("AIPLANE_DEFAULT_EMBED_MODEL", model)
    return user_client(runtime, unique, admin_api_key, permission="edit")


def user_client(runtime, unique, admin_api_key, *, permission):
    from functions.family_app import build_family_app

    email = f"{unique('u')}@example.com"
    user = runtime.post(
        "/users",
        json={
            "email": email,
            "password": "pw-12345678",
            "friendlyName": "searcher",
            "allowedResources": [
                {"name": "search", "resourceType": "search", "permission": permission},
                {"name": "files", "resourceType": "files", "permission": "view"},
            ],
        },
    )
    assert user.status_code == 201, user.text
    token = runtime.post("/login", json={"email": email, "password": "pw-12345678"}).json()["token"]
    return TestClient(
        build_family_app("runtime"), raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    )
