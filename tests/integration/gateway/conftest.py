"""Fixtures for the gateway tests: the runtime app, credentials and a fresh-name helper."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from aiplane.gateway import routing


@pytest.fixture
def runtime(admin_api_key):
    """The runtime family app as the local server mounts it, called with the admin key."""
    from functions.family_app import build_family_app

    routing.reset_cooldowns()
    with TestClient(
        build_family_app("runtime"), raise_server_exceptions=False, headers={"X-API-Key": admin_api_key}
    ) as client:
        yield client


@pytest.fixture
def unique():
    """Names unique to a test (they survive normalisation: letters and digits only)."""
    return lambda stem: f"{stem}{uuid.uuid4().hex[:10]}"


class Gateway:
    """Thin helpers over the HTTP API, so tests read as scenarios."""

    def __init__(self, client) -> None:
        self.client = client

    def backend(self, name: str, url: str, backend_type: str = "ollama", weight: int = 1) -> str:
        response = self.client.post(
            "/backends", json={"name": name, "baseUrl": url, "type": backend_type, "weight": weight}
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def group(
        self, name: str, purpose: str = "Internal Tasks", via: str = "/groups", strategy: str = "simple-shuffle"
    ) -> str:
        response = self.client.post(via, json={"name": name, "purposeType": purpose, "routingStrategy": strategy})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def model(self, name: str, **capabilities) -> str:
        body = {
            "model": name,
            "canChat": True,
            "canPrompt": True,
            "canStream": True,
            "canEmbed": False,
            "contextLength": 4096,
        }
        body.update(capabilities)
        response = self.client.post("/models", json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def join(self, group_id: str, *, backends: tuple[str, ...] = (), models: tuple[str, ...] = ()) -> None:
        for backend_id in backends:
            assert self.client.post(f"/backend-affinity/{group_id}/backends/{backend_id}").status_code == 201
        for model_id in models:
            assert self.client.post(f"/model-affinity/{group_id}/models/{model_id}").status_code == 200


@pytest.fixture
def gateway(runtime):
    return Gateway(runtime)


@pytest.fixture
def gateway_settings(monkeypatch):
    """Override failure-handling settings (allowed fails, retries...) for one test."""
    from aiplane.gateway import inference
    from aiplane.settings import get_settings

    def override(**values):
        changed = get_settings().model_copy(update=values)
        monkeypatch.setattr(routing, "get_settings", lambda: changed)
        monkeypatch.setattr(inference, "get_settings", lambda: changed)

    return override


def join_registry_refresh(timeout_s: float = 10) -> None:
    """Wait for the routing snapshot's background refresh, if one runs."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "registry-refresh":
            thread.join(timeout_s)
