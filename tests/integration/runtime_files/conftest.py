"""Fixtures for the runtime files, search, telegram, activity and system tests."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def runtime(admin_api_key):
    """The runtime family app as the local server mounts it, called with the admin key."""
    from functions.family_app import build_family_app

    with TestClient(build_family_app("runtime"), raise_server_exceptions=False, headers={"X-API-Key": admin_api_key}) as client:
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
