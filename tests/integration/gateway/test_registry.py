"""Backends, pools/groups, memberships, models and providers over HTTP (runtime family)."""

from __future__ import annotations

import threading
import time

from tests.integration.gateway.conftest import join_registry_refresh


def test_backend_crud_with_path_winning_over_body(runtime, unique):
    name = unique("backend")
    created = runtime.post("/backends", json={"name": name, "baseUrl": "http://127.0.0.1:9/", "type": "ollama"})
    assert created.status_code == 201
    backend = created.json()
    assert backend["baseUrl"] == "http://127.0.0.1:9" and backend["type"] == "ollama"
    assert (
        set(backend) == {"id", "name", "baseUrl", "type", "weight", "createdAt", "updatedAt"} and backend["weight"] == 1
    )

    updated = runtime.put(
        f"/backends/{backend['id']}",
        json={"id": "other", "name": name + "x", "baseUrl": "https://127.0.0.1:9", "type": "vllm"},
    )
    assert updated.status_code == 200 and updated.json()["id"] == backend["id"] and updated.json()["type"] == "vllm"

    details = runtime.get(f"/backends/{backend['id']}").json()
    assert details["name"] == name + "x" and details["models"] == [] and details["pulledModels"] == []
    assert any(item["id"] == backend["id"] for item in runtime.get("/backends").json())
    assert runtime.delete(f"/backends/{backend['id']}").json() == "backend removed"
    assert runtime.get(f"/backends/{backend['id']}").status_code == 404
    assert runtime.get("/backends/nope").json()["error"]["code"] == "not_found"


def test_backend_list_pages_by_timestamp_cursor(runtime, unique):
    ids = [
        runtime.post("/backends", json={"name": unique("b"), "baseUrl": "http://127.0.0.1:9", "type": "ollama"}).json()[
            "id"
        ]
        for _ in range(3)
    ]
    first = runtime.get("/backends", params={"limit": 2}).json()
    assert len(first) == 2
    rest = runtime.get("/backends", params={"limit": 1000, "cursor": first[-1]["createdAt"]}).json()
    seen = [item["id"] for item in first + rest]
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    assert runtime.get("/backends", params={"cursor": "yesterday"}).status_code == 400
    assert runtime.get("/backends", params={"limit": "-1"}).status_code == 400
    for backend_id in ids:
        runtime.delete(f"/backends/{backend_id}")


def test_invalid_backends_are_refused_and_nothing_is_written(runtime, unique):
    before = len(runtime.get("/backends", params={"limit": 1000}).json())
    for body in (
        {"name": unique("b"), "baseUrl": "ftp://h:1", "type": "ollama"},
        {"name": unique("b"), "baseUrl": "not a url", "type": "ollama"},
        {"name": unique("b"), "baseUrl": "http://127.0.0.1:9", "type": "Not A Type!"},
        {"name": "", "baseUrl": "http://127.0.0.1:9", "type": "ollama"},
        {"baseUrl": "http://127.0.0.1:9"},
    ):
        response = runtime.post("/backends", json=body)
        assert response.status_code == 400, (body, response.text)
        assert set(response.json()["error"]) == {"code", "message", "param", "type"}
    assert (
        runtime.post("/backends", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    )
    assert len(runtime.get("/backends", params={"limit": 1000}).json()) == before


def test_an_unknown_backend_type_is_a_400_and_nothing_is_written(runtime, unique):
    before = len(runtime.get("/backends", params={"limit": 1000}).json())
    name = unique("b")
    for backend_type in ("carrier-pigeon", "llamacpp"):
        response = runtime.post("/backends", json={"name": name, "baseUrl": "http://127.0.0.1:9", "type": backend_type})
        assert response.status_code == 400 and response.json()["error"]["param"] == "type", response.text
        assert "ollama" in response.json()["error"]["message"]
    assert len(runtime.get("/backends", params={"limit": 1000}).json()) == before
    existing = runtime.post("/backends", json={"name": name, "baseUrl": "http://127.0.0.1:9", "type": "ollama"}).json()
    refused = runtime.put(
        f"/backends/{existing['id']}", json={"name": name, "baseUrl": "http://127.0.0.1:9", "type": "carrier-pigeon"}
    )
    assert refused.status_code == 400 and runtime.get(f"/backends/{existing['id']}").json()["type"] == "ollama"
    runtime.delete(f"/backends/{existing['id']}")


def test_weights_strategies_and_fallbacks_are_stored_and_returned(runtime, unique):
    backend = runtime.post(
        "/backends", json={"name": unique("b"), "baseUrl": "http://127.0.0.1:9", "type": "ollama", "weight": 5}
    ).json()
    assert backend["weight"] == 5 and runtime.get(f"/backends/{backend['id']}").json()["weight"] == 5
    updated = runtime.put(
        f"/backends/{backend['id']}",
        json={"name": backend["name"], "baseUrl": backend["baseUrl"], "type": "ollama", "weight": 0},
    )
    assert updated.json()["weight"] == 0
    assert (
        runtime.post(
            "/backends", json={"name": unique("b"), "baseUrl": "http://127.0.0.1:9", "type": "ollama", "weight": -1}
        ).status_code
        == 400
    )
    for collection in ("/pools", "/groups"):
        plain = runtime.post(collection, json={"name": unique("g"), "purposeType": "x"}).json()
        assert plain["routingStrategy"] == "simple-shuffle"
        busy = runtime.post(
            collection, json={"name": unique("g"), "purposeType": "x", "routingStrategy": "least-busy"}
        ).json()
        assert runtime.get(f"{collection}/{busy['id']}").json()["routingStrategy"] == "least-busy"
        changed = runtime.put(
            f"{collection}/{busy['id']}", json={"name": busy["name"], "routingStrategy": "latency-based-routing"}
        )
        assert changed.json()["routingStrategy"] == "latency-based-routing"
        bad = runtime.post(collection, json={"name": unique("g"), "routingStrategy": "round-robin"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "routingStrategy"
    model = runtime.post(
        "/models",
        json={"model": unique("m"), "canChat": True, "fallbacks": ["other"], "contextWindowFallbacks": ["long"]},
    ).json()
    assert (model["fallbacks"], model["contextWindowFallbacks"]) == (["other"], ["long"])
    assert runtime.put(f"/models/{model['id']}", json={"fallbacks": []}).json()["fallbacks"] == []
    runtime.delete(f"/backends/{backend['id']}")


def test_pools_and_groups_are_one_resource(runtime, unique):
    name = unique("pool")
    pool = runtime.post("/pools", json={"name": name, "purposeType": "embeddings"}).json()
    assert runtime.get(f"/groups/{pool['id']}").json()["name"] == name
    assert runtime.get(f"/group-by-name/{name}").json()["id"] == pool["id"]
    assert runtime.get(f"/pool-by-name/{name}").json()["id"] == pool["id"]
    assert pool["id"] in [g["id"] for g in runtime.get("/group-by-purpose/embeddings").json()]
    assert pool["id"] in [g["id"] for g in runtime.get("/pool-by-purpose/embeddings", params={"limit": 1000}).json()]
    assert pool["id"] in [g["id"] for g in runtime.get("/pools").json()]

    duplicate = runtime.post("/groups", json={"name": name})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"

    renamed = runtime.put(
        f"/groups/{pool['id']}", json={"id": "ignored", "name": name + "r", "purposeType": "Internal Tasks"}
    )
    assert renamed.status_code == 200 and renamed.json()["id"] == pool["id"]
    assert runtime.get(f"/pool-by-name/{name}").status_code == 404
    assert runtime.get(f"/group-by-name/{name}r").json()["purposeType"] == "Internal Tasks"
    assert runtime.post("/groups", json={"name": name}).status_code == 201  # the old name is free again

    assert runtime.delete(f"/pools/{pool['id']}").json() == "deleted"
    assert runtime.get(f"/groups/{pool['id']}").status_code == 404


def test_associations_and_affinity_are_one_resource(gateway, runtime, unique):
    backend_id = gateway.backend(unique("b"), "http://127.0.0.1:9")
    model_id = gateway.model(unique("m"))
    pool_id = gateway.group(unique("g"), via="/pools")

    assert runtime.post(f"/backend-associations/{pool_id}/backends/{backend_id}").json() == "backend assigned"
    assert [g["id"] for g in runtime.get(f"/backend-affinity/{backend_id}/groups").json()] == [pool_id]
    assert [b["id"] for b in runtime.get(f"/backend-affinity/{pool_id}/backends").json()] == [backend_id]
    assigned = runtime.post(f"/model-affinity/{pool_id}/models/{model_id}")
    assert assigned.status_code == 200 and assigned.json() == "model assigned"
    assert [g["id"] for g in runtime.get(f"/model-associations/{model_id}/pools").json()] == [pool_id]
    assert [m["id"] for m in runtime.get(f"/model-associations/{pool_id}/models").json()] == [model_id]

    assert runtime.delete(f"/model-associations/{pool_id}/models/{model_id}").json() == "model removed"
    assert runtime.delete(f"/backend-affinity/{pool_id}/backends/{backend_id}").json() == "backend removed"
    assert runtime.get(f"/backend-associations/{backend_id}/pools").json() == []
    assert runtime.delete(f"/backend-affinity/{pool_id}/backends/{backend_id}").status_code == 404
    assert runtime.post(f"/backend-affinity/{pool_id}/backends/missing").status_code == 404
    assert runtime.post(f"/model-affinity/missing/models/{model_id}").status_code == 404


def test_models_internal_and_openai_formats(runtime, unique):
    name = unique("mistral") + ":instruct"
    created = runtime.post("/models", json={"model": name, "canChat": True, "contextLength": 8192})
    assert created.status_code == 201
    model = created.json()
    assert set(model) == {
        "id",
        "model",
        "canChat",
        "canEmbed",
        "canPrompt",
        "canStream",
        "contextLength",
        "fallbacks",
        "contextWindowFallbacks",
        "createdAt",
        "updatedAt",
    }
    assert runtime.post("/models", json={"model": name}).status_code == 409
    assert runtime.post("/models", json={"model": unique("m"), "contextLength": -1}).status_code == 400

    assert model["id"] in [m["id"] for m in runtime.get("/models", params={"limit": 1000}).json()]
    assert model["id"] in [m["id"] for m in runtime.get("/internal/models", params={"limit": 1000}).json()]
    listing = runtime.get("/v1/models", params={"limit": 1000}).json()
    assert listing["object"] == "list"
    entry = next(item for item in listing["data"] if item["id"] == name)
    assert entry["object"] == "model" and isinstance(entry["created"], int) and entry["owned_by"]

    updated = runtime.put(f"/models/{model['id']}", json={"canEmbed": True, "contextLength": 1024})
    assert (
        updated.json()["canEmbed"] is True
        and updated.json()["contextLength"] == 1024
        and updated.json()["canChat"] is True
    )
    renamed = runtime.put(f"/models/{model['id']}", json={"model": "other"})
    assert renamed.status_code == 403 and renamed.json()["error"]["code"] == "immutable_model"
    assert runtime.delete(f"/models/{model['id']}").json() == "model removed"
    assert runtime.delete(f"/models/{model['id']}").status_code == 404


def test_provider_keys_live_in_secrets_manager_and_are_masked(runtime, local_stack):
    import boto3

    key = "sk-test-" + str(time.time_ns())
    configured = runtime.post("/providers/gemini/configure", json={"apiKey": key, "upsert": True})
    assert configured.status_code == 200
    assert configured.json() == {"APIKey": "****" + key[-4:], "Type": "gemini"}
    assert key not in runtime.get("/providers/gemini/config").text
    assert key not in runtime.get("/providers/configs").text
    assert {"APIKey": "****" + key[-4:], "Type": "gemini"} in runtime.get("/providers/configs").json()
    secrets = boto3.client("secretsmanager")
    assert secrets.get_secret_value(SecretId="aiplane-local-provider-gemini-api-key")["SecretString"] == key

    assert runtime.post("/providers/gemini/configure", json={"apiKey": "other", "upsert": False}).status_code == 409
    assert runtime.post("/providers/gemini/configure", json={"upsert": True}).status_code == 400
    assert runtime.post("/providers/azure/configure", json={"apiKey": "k"}).status_code == 400
    assert runtime.delete("/providers/gemini/config").json() == "Provider config deleted successfully"
    assert runtime.get("/providers/gemini/config").status_code == 404


def test_an_aged_routing_snapshot_is_served_while_one_background_thread_reloads_it(
    runtime, unique, moved_clock, monkeypatch
):
    from aiplane.gateway import registry

    loads: list[str] = []
    load_registry = registry.load_registry

    def loading():
        loads.append(threading.current_thread().name)
        return load_registry()

    monkeypatch.setattr(registry, "load_registry", loading)
    registry.invalidate()
    first = registry.cached_registry()  # no snapshot: loaded on the caller's thread
    assert registry.cached_registry() is first and loads == ["MainThread"]
    moved_clock.advance(registry.SNAPSHOT_MAX_AGE_S + 0.1)
    assert registry.cached_registry() is first and registry.cached_registry() is first  # served while it reloads
    join_registry_refresh()
    assert loads == ["MainThread", "registry-refresh"]  # one refresher, off the request's thread
    refreshed = registry.cached_registry()
    assert refreshed is not first and loads == ["MainThread", "registry-refresh"]

    registry.write_backend_state("swr-backend", error=None, models=["m"], pulled_models=[])
    amended = registry.cached_registry()  # the sync result is in the snapshot, without a reload
    assert amended.states["swr-backend"].models == ["m"] and len(loads) == 2

    moved_clock.advance(registry.SNAPSHOT_STALE_LIMIT_S)  # too old to serve: loaded before answering
    assert registry.cached_registry() is not amended and loads[-1] == "MainThread"
    created = runtime.post("/backends", json={"name": unique("swr"), "baseUrl": "http://127.0.0.1:9", "type": "ollama"})
    assert created.json()["id"] in registry.cached_registry().backends  # a local write: fresh at once
    assert loads[-1] == "MainThread" and "registry-refresh" not in loads[2:]
