"""Health routes as their contracts write them."""


def test_appproxy_health_is_public(family_clients):
    assert family_clients["appproxy"].get("/health").json() == {"status": "ok"}


def test_appproxy_health_status_lists_workers_for_the_manager(family_clients, manager_token):
    from aiplane.data.models import AppproxyWorkerRecord

    AppproxyWorkerRecord("WORKER#w-health", "META", gsi1sk="proxy-1.example", worker_id="w-health",
                         authority="proxy-1.example", available_slots=8, occupied_slots=2, nodes=2).save()
    body = family_clients["appproxy"].get("/health/status", headers={"X-BackendAI-Token": manager_token}).json()
    assert body["coordinator_version"]
    assert {"authority": "proxy-1.example", "available_slots": 8, "occupied_slots": 2, "ha_setup": True} in body["workers"]


def test_mlworker_health_matches_health_response(family_clients):
    body = family_clients["mlworker"].get("/health").json()
    assert body["status"] == "healthy"
    assert set(body) == {"status", "version", "timestamp"}


def test_gpufarm_health_metrics_stats(family_clients):
    client = family_clients["gpufarm"]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["checks"]["database"]["healthy"] is True
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE aiplane_requests_total gauge" in metrics.text
    stats = client.get("/stats").json()
    assert set(stats) >= {"timestamp", "requests_total", "requests_per_second", "active_connections",
                          "gpu_instances_active", "models_loaded"}
