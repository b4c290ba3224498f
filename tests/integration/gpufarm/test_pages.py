"""Pages cost a page (issue 18): each gpufarm route below reads the same few items of the gpufarm
table at any number of stored contracts, models, agents and transactions (counted with botocore
hooks); `gpu_usage` comes from the caller's contracts; `requests_total` is one count across app
instances, a Prometheus counter; catalog spot prices are cached."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from aiplane import request_counts
from aiplane.commerce import billing
from aiplane.commerce.records import ModelRecord, model_key
from aiplane.data.aws import client
from aiplane.gpufarm import backfill, catalog, contract_states, contracts
from aiplane.gpufarm.records import GpuContractRecord
from functions.family_app import build_group_app
from tests.integration.gpufarm.conftest import fund, new_user, running_contract
from tests.integration.gpufarm.pages import counting_reads, seed_agents, seed_contracts, seed_models

OFFER = "g5.xlarge"


def reads(call) -> int:
    with counting_reads() as counter:
        response = call()
        assert response.status_code < 500 or response.status_code == 502, response.text
    return counter.items


def test_gpu_usage_in_the_export_comes_from_the_callers_contracts_only(gpufarm):
    user_id, headers = new_user("usage")
    seed_contracts(user_id, 3)
    running = running_contract(user_id)
    seed_contracts(new_user("someone")[0], 20)
    exported = gpufarm.get("/api/v1/user/export", headers=headers)
    assert exported.status_code == 200, exported.text
    usage = exported.json()["gpu_usage"]
    assert len(usage) == 4 and {row["status"] for row in usage} == {"terminated", "running"}
    mine = next(row for row in usage if row["contract_id"] == running.contract_id)
    assert mine["provider"] == "aws" and mine["instance_id"] == OFFER and mine["cost"] == 0.0
    before = reads(lambda: gpufarm.get("/api/v1/user/export", headers=headers))
    seed_contracts(new_user("someone-else")[0], 200)
    assert reads(lambda: gpufarm.get("/api/v1/user/export", headers=headers)) == before


def test_requests_total_is_one_count_across_app_instances_and_a_prometheus_counter(monkeypatch):
    monkeypatch.setattr(request_counts, "FLUSH_S", 0.0)
    one, other = TestClient(build_group_app("gpufarm", "health")), TestClient(build_group_app("gpufarm", "health"))
    start = one.get("/stats").json()["requests_total"]
    for _ in range(3):
        assert other.get("/health").status_code == 200
    for _ in range(2):
        assert one.get("/health").status_code == 200
    # The other instance's three, this one's two, and this request itself.
    assert one.get("/stats").json()["requests_total"] == start + 6
    metrics = other.get("/metrics").text
    assert "# TYPE aiplane_requests_total counter" in metrics
    assert f"aiplane_requests_total {start + 7}" in metrics


def test_the_running_count_follows_status_writes_even_from_a_stale_record():
    user_id, _ = new_user("counted")
    seed_contracts(user_id, 1, status=contracts.PROVISIONING)
    [record] = contract_states.user_contracts(user_id, limit=10)
    before = contract_states.running_count()
    contracts.set_status(record, contracts.RUNNING)
    assert contract_states.running_count() == before + 1
    stale = contracts.get_contract(record.contract_id)
    contracts.set_status(record, contracts.TERMINATING)
    stale.status = contracts.RUNNING
    contracts.set_status(contracts.get_contract(record.contract_id), contracts.RUNNING)  # back to running
    stale.status = contracts.TERMINATING  # its copy still says terminating: the write reads it again
    contracts.set_status(stale, contracts.TERMINATED)
    assert contract_states.running_count() == before
    assert contracts.get_contract(record.contract_id).gsi1sk.startswith("DONE#")


@pytest.fixture
def fleet_user(gpufarm):
    user_id, headers = new_user("pages")
    fund(user_id, 10)
    return user_id, headers


def seed_history(user_id: str, count: int) -> None:
    """What accumulates: others' contracts for the same offer, the caller's own ended ones, models
    that are not served, agents that stopped heartbeating and other users' live ones, payments."""
    someone = new_user("history")[0]
    seed_contracts(someone, count)
    seed_contracts(someone, count, status=contracts.RUNNING)
    seed_contracts(user_id, count)
    seed_models(someone, count)
    seed_agents(someone, count, live=False)
    seed_agents(someone, count // 5 + 1, live=True)
    for _ in range(count // 10 + 1):
        billing.create_payment(someone, billing.validate_payment(1, "USD", "invoice", None), None)


def test_every_page_reads_the_same_few_items_at_any_size(gpufarm, auth, fleet_user):
    user_id, headers = fleet_user
    seed_agents(user_id, 2, live=True)

    def delete_own() -> int:
        seed_contracts(user_id, 1, status=contracts.PROVISIONING)
        return reads(lambda: gpufarm.delete(f"/api/v1/gpu/instances/aws/{OFFER}", headers=headers))

    def delete_as_admin() -> int:
        seed_contracts(user_id, 1, status=contracts.PROVISIONING)
        return reads(lambda: gpufarm.delete(f"/api/v1/gpu/instances/aws/{OFFER}", headers=auth))

    routes = {
        "DELETE by offer": delete_own,
        "DELETE by offer (admin)": delete_as_admin,
        "/stats": lambda: reads(lambda: gpufarm.get("/stats")),
        "/metrics": lambda: reads(lambda: gpufarm.get("/metrics")),
        "proxy": lambda: reads(
            lambda: gpufarm.post("/api/v1/gpu/proxy", headers=headers, json={"path": "/v1/x", "payload": {}})
        ),
        "/loadbalancer/loads": lambda: reads(lambda: gpufarm.get("/api/v1/loadbalancer/loads", headers=headers)),
        "/loadbalancer/loads (admin page)": lambda: reads(
            lambda: gpufarm.get("/api/v1/loadbalancer/loads", headers=auth, params={"limit": 5})
        ),
        "/models (admin page)": lambda: reads(lambda: gpufarm.get("/api/v1/models", headers=auth, params={"limit": 5})),
        "/billing/transactions (admin page)": lambda: reads(
            lambda: gpufarm.get("/api/v1/billing/transactions", headers=auth, params={"limit": 5})
        ),
    }
    for route in routes.values():
        route()  # warm: first-use reads (caches, strategy) are not the page's
    seed_history(user_id, 5)
    small = {name: route() for name, route in routes.items()}
    seed_history(user_id, 200)
    large = {name: route() for name, route in routes.items()}
    assert small["DELETE by offer"] == large["DELETE by offer"] == 1, (small, large)
    assert large["DELETE by offer (admin)"] <= 4, large  # the newest of each live status
    for name in ("/stats", "/metrics"):  # the count shards (8 + 8, as they fill) and the models ready now
        assert large[name] <= 16 + ModelRecord.ready_now.count("READYMODELS"), (name, small, large)
    for name in ("proxy", "/loadbalancer/loads"):  # the caller's two live agents, the strategy, its rotation
        assert large[name] == small[name] <= 4, (name, small, large)
    assert large["/loadbalancer/loads (admin page)"] <= 5 + 2, (
        large
    )  # the page, one more (is there a next?), the strategy
    for name in ("/models (admin page)", "/billing/transactions (admin page)"):
        assert large[name] <= 5 * 8, (name, large)  # a page from each of the 8 shards at most
    # ...and the pages are still the newest of everyone's, across the shards.
    listed = gpufarm.get("/api/v1/billing/transactions", headers=auth, params={"limit": 5}).json()["transactions"]
    assert [row["created_at"] for row in listed] == sorted((row["created_at"] for row in listed), reverse=True)


def test_catalog_spot_prices_are_read_once_within_their_ttl(gpufarm, auth, monkeypatch):
    calls: list[str] = []
    ec2 = client("ec2")
    ec2.meta.events.register(
        "before-call.ec2.DescribeSpotPriceHistory", lambda **_: calls.append("spot"), unique_id="count-spot"
    )
    try:
        catalog._ec2_cache.clear()
        for _ in range(3):
            assert gpufarm.get("/api/v1/gpu/instances", headers=auth, params={"provider": "aws"}).status_code == 200
        assert len(calls) == 1
        monkeypatch.setattr(catalog, "SPOT_PRICE_CACHE_S", 0.0)  # the TTL has passed
        assert gpufarm.get("/api/v1/gpu/instances", headers=auth, params={"provider": "aws"}).status_code == 200
        assert len(calls) == 2
    finally:
        ec2.meta.events.unregister("before-call.ec2.DescribeSpotPriceHistory", unique_id="count-spot")


def test_the_backfill_rekeys_what_was_written_before_and_changes_nothing_the_second_time(gpufarm):
    user_id, headers = new_user("legacy")
    moment = contracts.now()
    legacy = GpuContractRecord(
        GpuContractRecord.key("contract_legacy" + user_id[:8]),
        gsi1pk=f"GPUOFFER#aws#{OFFER}",
        gsi1sk="x",
        gsi2pk=GpuContractRecord.status_key(contracts.PROVISIONING),
        gsi2sk="contract_legacy",
        contract_id="contract_legacy" + user_id[:8],
        user_id=user_id,
        provider="aws",
        offer_id=OFFER,
        status=contracts.PROVISIONING,
        created_at=moment,
        updated_at=moment,
    )
    legacy.save()
    seed_models(user_id, 1, status="ready")
    model = next(ModelRecord.by_owner.query(f"MODELOWNER#{user_id}"))
    assert gpufarm.delete(f"/api/v1/gpu/instances/aws/{OFFER}", headers=headers).status_code == 404
    first = backfill.backfill()
    assert first["contracts_rekeyed"] >= 1 and first["models_indexed"] >= 1
    assert ModelRecord.get(model_key(model.model_id), "META").gsi3pk == "READYMODELS"
    assert backfill.backfill()["contracts_rekeyed"] == 0
    assert gpufarm.delete(f"/api/v1/gpu/instances/aws/{OFFER}", headers=headers).status_code == 200
