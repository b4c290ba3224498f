"""GPU provisioning on the local stack: time from POST to `running` (with the agent registered),
and provisioner throughput (contracts launched per second) for a batch of 100.

    .venv/bin/python bench/provision.py [--batch 100] [--runs 5]

Everything real but AWS: the local HTTP server, SQS dispatch to the provisioner worker, moto
EC2, the state-change events and one agent process per running instance.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # functions/ lives at the repository root

from aiplane_local.stack import free_port, start_local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5, help="single POST-to-running measurements")
    args = parser.parse_args()
    os.environ.setdefault("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")

    stack = start_local_stack(free_port())
    import httpx

    from aiplane.commerce import billing
    from aiplane.gpufarm.contracts import RUNNING, get_contract
    from aiplane.identity.principal import BOOTSTRAP_ADMIN_ID
    from aiplane_local.provision import publish_api_urls
    from aiplane_local.server import BackgroundServer, build_root_app

    server = BackgroundServer(build_root_app())
    base = server.base_url
    publish_api_urls(stack.provisioned.prefix, os.environ["AWS_REGION"], base)
    api = httpx.Client(
        base_url=f"{base}/gpufarm", headers={"Authorization": f"Bearer {stack.bootstrap['admin-api-key']}"}, timeout=60
    )
    api.get("/api/v1/gpu/instances", params={"provider": "aws"}).raise_for_status()  # warm EC2 catalog and moto
    # GPU spend is held against credits (the batch stays within the hourly spending limit).
    billing.create_payment(BOOTSTRAP_ADMIN_ID, billing.validate_payment(1000, "USD", "invoice", None), None)

    try:
        to_running, to_agent = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            contract_id = api.post("/api/v1/gpu/instances/aws/g5.xlarge", json={"duration_hours": 1}).json()[
                "contract_id"
            ]
            while (record := get_contract(contract_id)).status != RUNNING:
                time.sleep(0.01)
            to_running.append(time.perf_counter() - started)
            while record.provider_instance_id not in api.get("/api/v1/loadbalancer/loads").json()["loads"]:
                time.sleep(0.02)
            to_agent.append(time.perf_counter() - started)
            api.delete(f"/api/v1/gpu/instances/aws/{contract_id}").raise_for_status()

        stack.gpu_instances.stop()  # a hundred agent processes would measure the machine, not the provisioner
        started = time.perf_counter()
        reserved = api.post(
            "/api/v1/gpu/instances/reserve",
            json={"count": args.batch, "filters": {"provider": "aws", "gpu_model": "T4"}},
        ).json()["reserved"]
        enqueued = time.perf_counter() - started
        pending = {item["contract_id"] for item in reserved}
        while pending:
            pending = {cid for cid in pending if not get_contract(cid).provider_instance_id}
            time.sleep(0.02)
        elapsed = time.perf_counter() - started

        print(
            f"POST -> running (EC2 state event applied), {args.runs} runs: "
            f"median {statistics.median(to_running) * 1000:.0f} ms, max {max(to_running) * 1000:.0f} ms"
        )
        print(f"POST -> agent registered and heartbeating: median {statistics.median(to_agent) * 1000:.0f} ms")
        print(
            f"batch of {len(reserved)}: enqueued in {enqueued * 1000:.0f} ms (one POST /reserve), "
            f"all launched after {elapsed:.2f} s -> {len(reserved) / elapsed:.1f} contracts/s"
        )
    finally:
        server.stop()
        stack.stop()


if __name__ == "__main__":
    main()
