"""Plugins: the catalog, per-plugin config validation, disable, health."""

from __future__ import annotations

import pytest

from aiplane.mlworker.models import PluginConfigRecord

PLUGIN_FIELDS = {"name", "enabled", "mode", "status", "config", "requires_restart", "version"}


def test_catalog_lists_every_plugin_with_defaults(client, admin):
    plugins = client.get("/v1/plugins", headers=admin).json()
    assert [p["name"] for p in plugins] == ["jupyter", "vllm", "tensorboard", "mlflow", "wandb"]
    assert all(set(p) == PLUGIN_FIELDS for p in plugins)
    jupyter = client.get("/v1/plugins/jupyter", headers=admin).json()
    assert jupyter["enabled"] is True and jupyter["mode"] == "sidecar" and jupyter["config"]["settings"]["port"] == 8888
    # No agent has reported it: nothing claims it runs, and there is no check time to show.
    assert jupyter["status"] == {"name": "jupyter", "status": "unhealthy"}
    vllm = client.get("/v1/plugins/vllm/config", headers=admin).json()
    assert vllm["enabled"] is False and vllm["mode"] == "disabled"


def test_put_config_validates_against_the_plugin_schema_then_stores_it(client, admin):
    response = client.put(
        "/v1/plugins/vllm/config",
        headers=admin,
        json={
            "enabled": True,
            "mode": "sidecar",
            "settings": {"model": "meta-llama/Llama-3.1-8B", "tensor_parallel_size": 2},
        },
    )
    assert response.status_code == 200
    plugin = response.json()
    assert set(plugin) == PLUGIN_FIELDS and plugin["enabled"] is True and plugin["requires_restart"] is True
    assert plugin["config"]["image"] == "vllm/vllm-openai:v0.6.3"
    config = client.get("/v1/plugins/vllm/config", headers=admin).json()
    assert config["settings"] == {
        "model": "meta-llama/Llama-3.1-8B",
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.9,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"settings": {"tensor_parallel_size": 16}},
        {"settings": {"unknown_knob": 1}},
        {"settings": {"gpu_memory_utilization": 1.5}},
        {"enabled": True, "mode": "disabled"},
        {"mode": "hybrid"},
        {"enabled": "perhaps"},
    ],
)
def test_invalid_configs_are_refused_without_writing(client, admin, body):
    response = client.put("/v1/plugins/vllm/config", headers=admin, json=body)
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"
    assert PluginConfigRecord.count("PLUGIN#vllm") == 0


def test_delete_disables_and_health_follows(client, admin, register):
    register("gpu-1")
    beat = client.post(
        "/v1/scheduler/workers/gpu-1/heartbeat", headers=admin, json={"plugins": {"tensorboard": {"status": "healthy"}}}
    )
    assert beat.status_code == 200, beat.text
    health = client.get("/v1/plugins/tensorboard/health", headers=admin).json()
    assert health["status"] == "healthy" and {"status", "version", "timestamp"} <= set(health)
    assert client.delete("/v1/plugins/tensorboard/config", headers=admin).status_code == 204
    assert client.get("/v1/plugins/tensorboard", headers=admin).json()["mode"] == "disabled"
    health = client.get("/v1/plugins/tensorboard/health", headers=admin).json()
    assert health["status"] == "unhealthy" and health["reason"] == "disabled"
    assert client.get("/v1/plugins/tensorboard", headers=admin).json()["status"]["status"] == "stopped"


def test_unknown_plugin_is_404_everywhere(client, admin):
    for method, path in (
        ("get", "/v1/plugins/nope"),
        ("get", "/v1/plugins/nope/config"),
        ("delete", "/v1/plugins/nope/config"),
        ("get", "/v1/plugins/nope/health"),
    ):
        response = getattr(client, method)(path, headers=admin)
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    assert client.put("/v1/plugins/nope/config", headers=admin, json={}).status_code == 404


def test_only_admins_change_plugin_configuration(client, user_headers):
    assert client.get("/v1/plugins", headers=user_headers).status_code == 200
    assert client.put("/v1/plugins/wandb/config", headers=user_headers, json={"enabled": True}).status_code == 403
    assert client.delete("/v1/plugins/wandb/config", headers=user_headers).status_code == 403
