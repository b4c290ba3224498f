"""The GPU catalog on moto EC2 (real GpuInfo) and loopback marketplace stand-ins."""

from __future__ import annotations


def offers(gpufarm, auth, **query):
    response = gpufarm.get("/api/v1/gpu/instances", params=query, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_aws_offers_carry_the_real_gpu_info(gpufarm, auth):
    body = offers(gpufarm, auth, provider="aws")
    assert body["provider"] == "aws" and body["count"] == len(body["instances"]) > 0
    by_type = {offer["instance_type"]: offer for offer in body["instances"]}
    g5 = by_type["g5.xlarge"]
    assert (g5["gpu_model"], g5["vram_gb"], g5["gpu_count"], g5["gpu_vendor"]) == ("A10G", 24, 1, "NVIDIA")
    p4d = by_type["p4d.24xlarge"]
    assert (p4d["gpu_model"], p4d["gpu_count"], p4d["vram_gb"]) == ("A100", 8, 40)
    assert set(g5) >= {"id", "provider", "gpu_model", "vram_gb", "price_per_hour", "location", "available"}
    assert g5["price_per_hour"] == 1.006 and g5["location"].startswith("us-east-1")
    assert g5["spot_price_per_hour"] is not None
    assert g5["id"] == f"g5.xlarge@{g5['location']}"


def test_filters_min_vram_price_model_and_location(gpufarm, auth):
    big = offers(gpufarm, auth, provider="aws", min_vram=40)["instances"]
    assert big and all(offer["vram_gb"] >= 40 for offer in big)
    assert not any(offer["gpu_model"] == "A10G" for offer in big)
    cheap = offers(gpufarm, auth, provider="aws", max_price=1.0)["instances"]
    assert cheap and all(offer["price_per_hour"] <= 1.0 for offer in cheap)
    a10g = offers(gpufarm, auth, provider="aws", gpu_model="a10g", location="us-east-1b")["instances"]
    assert a10g and all(o["gpu_model"] == "A10G" and o["location"] == "us-east-1b" for o in a10g)
    prices = [offer["price_per_hour"] for offer in offers(gpufarm, auth, provider="aws")["instances"]]
    assert prices == sorted(prices)


def test_unconfigured_marketplaces_are_errors_not_failures(gpufarm, auth):
    body = offers(gpufarm, auth, provider="all", min_vram=16)
    assert body["count"] > 0
    assert {error["provider"] for error in body["errors"]} == {"vastai", "ionet"}


def test_bad_catalog_queries_are_400(gpufarm, auth):
    assert gpufarm.get("/api/v1/gpu/instances", params={"provider": "lambdalabs"}, headers=auth).status_code == 400
    response = gpufarm.get("/api/v1/gpu/instances", params={"max_price": -1}, headers=auth)
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"
    assert gpufarm.get("/api/v1/gpu/instances").status_code == 401


def test_marketplace_offers_through_their_http_apis(gpufarm, auth, marketplaces):
    vast, ionet = marketplaces
    body = offers(gpufarm, auth, provider="all", location="US")
    assert body["errors"] == []
    by_id = {(offer["provider"], offer["id"]): offer for offer in body["instances"]}
    assert by_id[("vastai", "1001")]["gpu_model"] == "RTX 4090" and by_id[("vastai", "1001")]["vram_gb"] == 24
    assert by_id[("ionet", "io-h100-1")]["price_per_hour"] == 2.1
    assert ("vastai", "1002") not in by_id  # EU-NORTH is filtered out by location=US
    assert any(path == "/api/v0/bundles/" for _, path, _ in vast.requests)

    vast.failing = True
    body = offers(gpufarm, auth, provider="all")
    assert [error["provider"] for error in body["errors"]] == ["vastai"]
    assert any(offer["provider"] == "ionet" for offer in body["instances"])
    assert any(offer["provider"] == "aws" for offer in body["instances"])


def test_available_gpus_and_examples(gpufarm, auth):
    body = gpufarm.get("/api/v1/gpu/available", headers=auth).json()
    names = {gpu["name"]: gpu for gpu in body["gpus"]}
    assert body["count"] == len(body["gpus"])
    assert (
        names["A10G"]["vendor"] == "NVIDIA" and names["A10G"]["tier"] == "mid-range" and names["A10G"]["vram_gb"] == 24
    )
    assert names["H100"]["tier"] == "high-end" and names["H100"]["avg_price_per_hour"] > 0
    high_end = gpufarm.get(
        "/api/v1/gpu/available", params={"vendor": "nvidia", "tier": "high-end"}, headers=auth
    ).json()
    assert high_end["gpus"] and all(gpu["tier"] == "high-end" for gpu in high_end["gpus"])

    examples = gpufarm.get("/api/v1/gpu/examples")  # public
    assert examples.status_code == 200
    assert examples.json()["available_examples"] == [
        "cost_optimized",
        "performance_focused",
        "nvidia_only",
        "amd_preferred",
    ]
    assert set(examples.json()["examples"]) == set(examples.json()["available_examples"])
