"""Health routes as their contracts write them."""


def test_appproxy_health_is_public(family_clients):
    assert family_clients["appproxy"].get("/health").json() == {"status": "ok"}


def test_appproxy_health_status_lists_workers_for_the_manager(family_clients, manager_token, worker_token):
    client = family_clients["appproxy"]
    worker = {
        "authority": "proxy-health.example",
        "frontend_mode": "port",
        "protocol": "http",
        "hostname": "proxy-health.example",
        "use_tls": False,
        "api_port": 6001,
        "port_range": [10200, 10207],
        "filtered_apps_only": False,
        "app_filters": [],
    }
    for _ in range(2):  # two nodes of one authority: an HA set-up
        assert client.put("/api/worker", json=worker, headers={"X-BackendAI-Token": worker_token}).status_code == 200
    body = client.get("/health/status", headers={"X-BackendAI-Token": manager_token}).json()
    assert body["coordinator_version"]
    assert {"authority": "proxy-health.example", "available_slots": 8, "occupied_slots": 0, "ha_setup": True} in body[
        "workers"
    ]


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
    assert "# TYPE aiplane_requests_total counter" in metrics.text
    stats = client.get("/stats").json()
    assert set(stats) >= {
        "timestamp",
        "requests_total",
        "requests_per_second",
        "active_connections",
        "gpu_instances_active",
        "models_loaded",
    }
