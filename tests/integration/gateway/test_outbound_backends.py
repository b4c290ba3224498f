"""Backends under the outbound-URL policy, and provider keys that go only to their provider.

Replays: an editor points an `openai` backend at their own server (a loopback stand-in) and the
operator's key must never arrive there, in sync or in chat; backends aimed at metadata or, where
the environment does not admit it, loopback are refused when set and when called."""

from __future__ import annotations

import pytest

from aiplane import outbound_policy
from aiplane.gateway import sync
from aiplane.outbound_policy import OutboundPolicy
from aiplane_shared.environments import get_environment
from tests.integration.gateway.standins import OllamaStandIn, OpenAIStandIn
from tests.outbound_policies import use_deployed_policy


class KeyCatcher(OpenAIStandIn):
    """The editor's own server: answers anything and keeps every Authorization it is sent."""

    def __init__(self, name: str, models: list[str]) -> None:
        super().__init__(name, models)
        self.authorizations: list[str | None] = []

    def _authorised(self, http) -> bool:
        self.authorizations.append(http.headers.get("Authorization"))
        return True


@pytest.fixture
def deployed_policy(monkeypatch):
    """Backends as dev and prod admit them (private VPC addresses, not loopback), with a fake DNS."""
    return use_deployed_policy(monkeypatch, {"llm.vpc.test": ["10.0.3.7"], "metadata.test": ["169.254.169.254"]})


@pytest.fixture
def editor(family_clients, runtime):
    """A user holding edit (not manage) on backends, and a client that is only them."""
    anonymous = family_clients["runtime"]
    from uuid import uuid4

    registered = anonymous.post(
        "/register", json={"email": f"editor-{uuid4().hex[:10]}@example.com", "password": "correct-horse-42"}
    )
    assert registered.status_code == 201, registered.text
    user_id, token = registered.json()["user"]["id"], registered.json()["token"]
    grant = runtime.post(
        "/access-control",
        json={"identity": user_id, "resource": "backends", "resourceType": "collection", "permission": "edit"},
    )
    assert grant.status_code == 201, grant.text
    return lambda method, path, **kwargs: anonymous.request(
        method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
    )


@pytest.fixture
def operator_key(runtime, unique):
    key = "sk-operator-" + unique("k")
    assert runtime.post("/providers/openai/configure", json={"apiKey": key, "upsert": True}).status_code == 200
    yield key
    runtime.delete("/providers/openai/config")


def test_an_editors_openai_backend_never_receives_the_operators_key(runtime, gateway, unique, editor, operator_key):
    model = unique("gptx")
    own = KeyCatcher("editor-server", models=[model])
    try:
        created = editor(
            "POST", "/backends", json={"name": unique("mine"), "baseUrl": own.url + "/v1", "type": "openai"}
        )
        assert created.status_code == 201, created.text
        backend_id = created.json()["id"]
        gateway.join(gateway.group(unique("g")), backends=(backend_id,), models=(gateway.model(model),))

        assert sync.sync_one(backend_id) is None
        chat = runtime.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}
        )
        assert chat.status_code == 200, chat.text
        streamed = runtime.post(
            "/v1/chat/completions",
            json={"model": model, "stream": True, "messages": [{"role": "user", "content": "s"}]},
        )
        assert streamed.status_code == 200
        assert len(own.authorizations) >= 3 and not any(operator_key in (seen or "") for seen in own.authorizations)

        # An editor's change to a backend a manager set keeps the grant only while the URL stays.
        assert (
            runtime.put(
                f"/backends/{backend_id}", json={"name": "managed", "baseUrl": own.url + "/v1", "type": "openai"}
            ).status_code
            == 200
        )
        assert sync.sync_one(backend_id) is None
        assert own.authorizations[-1] == f"Bearer {operator_key}"  # the operator's manager vouched for this URL
        assert (
            editor(
                "PUT", f"/backends/{backend_id}", json={"name": "renamed", "baseUrl": own.url + "/v1", "type": "openai"}
            ).status_code
            == 200
        )
        assert sync.sync_one(backend_id) is None and own.authorizations[-1] == f"Bearer {operator_key}"
        other = KeyCatcher("editor-other", models=[model])
        try:
            moved = editor(
                "PUT", f"/backends/{backend_id}", json={"name": "renamed", "baseUrl": other.url, "type": "openai"}
            )
            assert moved.status_code == 200
            assert sync.sync_one(backend_id) is None
            chat = runtime.post(
                "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "again"}]}
            )
            assert chat.status_code == 200, chat.text
            assert other.authorizations and not any(operator_key in (seen or "") for seen in other.authorizations)
        finally:
            other.stop()
    finally:
        runtime.delete(f"/backends/{backend_id}")
        own.stop()


def test_only_the_providers_official_host_gets_the_key_by_default():
    from aiplane.gateway.providers import is_official_api

    assert is_official_api("openai", "https://api.openai.com/v1") and is_official_api(
        "gemini", "https://generativelanguage.googleapis.com"
    )
    for url in (
        "http://api.openai.com/v1",
        "https://api.openai.com.evil.test/v1",
        "https://api.openai.com:8443/v1",
        "https://evil.test/api.openai.com",
        "https://generativelanguage.googleapis.com",
    ):
        assert not is_official_api("openai", url), url


def test_backends_aimed_at_metadata_are_refused_and_nothing_is_written(runtime, unique):
    before = len(runtime.get("/backends", params={"limit": 1000}).json())
    for url in ("http://169.254.169.254/latest", "http://[fd00:ec2::254]", "http://[::ffff:169.254.169.254]:80"):
        response = runtime.post("/backends", json={"name": unique("meta"), "baseUrl": url, "type": "ollama"})
        assert response.status_code == 400, response.text
        assert (
            response.json()["error"]["param"] == "baseUrl"
            and "outbound-URL policy" in response.json()["error"]["message"]
        )
    assert len(runtime.get("/backends", params={"limit": 1000}).json()) == before


def test_loopback_backends_are_refused_where_the_environment_does_not_admit_them(runtime, unique, deployed_policy):
    refused = runtime.post(
        "/backends", json={"name": unique("lo"), "baseUrl": "http://127.0.0.1:11434", "type": "ollama"}
    )
    assert refused.status_code == 400 and "loopback" in refused.json()["error"]["message"]
    assert (
        runtime.post(
            "/backends", json={"name": unique("md"), "baseUrl": "http://metadata.test", "type": "vllm"}
        ).status_code
        == 400
    )
    in_vpc = runtime.post(
        "/backends", json={"name": unique("vpc"), "baseUrl": "http://llm.vpc.test:8000", "type": "vllm"}
    )
    assert in_vpc.status_code == 201, in_vpc.text  # LLM backends on private VPC addresses
    moved = runtime.put(
        f"/backends/{in_vpc.json()['id']}",
        json={"name": unique("vpc"), "baseUrl": "http://127.0.0.1:8000", "type": "vllm"},
    )
    assert moved.status_code == 400
    runtime.delete(f"/backends/{in_vpc.json()['id']}")


def test_a_backend_is_checked_again_when_called(runtime, gateway, unique, monkeypatch):
    model = unique("llama") + ":latest"
    ollama = OllamaStandIn("checked", models=[model])
    try:
        backend_id = gateway.backend(unique("b"), ollama.url)  # admitted where it was set (local)
        gateway.join(gateway.group(unique("g")), backends=(backend_id,), models=(gateway.model(model),))
        prod = OutboundPolicy("prod", get_environment("prod").outbound_allowlists)
        monkeypatch.setattr(outbound_policy, "environment_policy", lambda: prod)
        chat = runtime.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
        )
        assert chat.status_code == 400 and "outbound-URL policy" in chat.json()["error"]["message"]
        assert "outbound-URL policy" in sync.sync_one(backend_id)
        assert "loopback" in runtime.get(f"/backends/{backend_id}").json()["error"]
        assert ollama.requests == []
    finally:
        runtime.delete(f"/backends/{backend_id}")
        ollama.stop()
