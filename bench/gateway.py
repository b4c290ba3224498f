"""Gateway overhead: /runtime/v1/chat/completions through the local stack vs the stand-in
Ollama called directly, and DynamoDB calls per routed request.

    .venv/bin/python bench/gateway.py [--requests 500]

Prints p50/p99 of both paths, the added latency, and the DynamoDB calls per request (all of
them, and the runtime-table ones that routing makes), counted by botocore hooks on every
DynamoDB client in the process.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiplane_local.stack import free_port, start_local_stack

WARMUP_REQUESTS = 20


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("aiplane").setLevel(logging.WARNING)

    stack = start_local_stack(start_dispatchers=False)
    import httpx
    import uvicorn
    from botocore.client import BaseClient
    from pynamodb.connection.base import Connection

    from aiplane_local.server import build_root_app
    from tests.integration.gateway.standins import OllamaStandIn

    calls: Counter[str] = Counter()
    make_api_call = BaseClient._make_api_call

    def counting(client, operation, params):  # every boto3 and PynamoDB client goes through here
        if client.meta.service_model.service_name == "dynamodb":
            calls[f"{operation} {params.get('TableName', '?')}"] += 1
        return make_api_call(client, operation, params)

    BaseClient._make_api_call = counting
    pynamodb_call = Connection._make_api_call

    def counting_pynamodb(connection, operation, operation_kwargs):  # PynamoDB sends requests itself
        calls[f"{operation} {operation_kwargs.get('TableName', '?')}"] += 1
        return pynamodb_call(connection, operation, operation_kwargs)

    Connection._make_api_call = counting_pynamodb

    ollama = OllamaStandIn("bench")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_root_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    base = f"http://127.0.0.1:{port}/runtime"
    client = httpx.Client(headers={"X-API-Key": stack.bootstrap["admin-api-key"]}, timeout=30)
    suffix = str(time.time_ns())
    backend = client.post(f"{base}/backends", json={"name": f"bench-{suffix}", "baseUrl": ollama.url, "type": "ollama"}).json()
    group = client.post(f"{base}/groups", json={"name": f"bench-{suffix}", "purposeType": "bench"}).json()
    model = client.post(f"{base}/models", json={"model": "benchmodel:latest", "canChat": True, "contextLength": 4096}).json()
    client.post(f"{base}/backend-affinity/{group['id']}/backends/{backend['id']}").raise_for_status()
    client.post(f"{base}/model-affinity/{group['id']}/models/{model['id']}").raise_for_status()

    messages = [{"role": "user", "content": "hello"}]
    direct_body = {"model": "benchmodel:latest", "messages": messages, "stream": False}
    routed_body = {"model": "benchmodel:latest", "messages": messages}

    def timed(url: str, body: dict) -> float:
        started = time.perf_counter()
        response = client.post(url, json=body)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed * 1000

    for _ in range(WARMUP_REQUESTS):
        timed(f"{ollama.url}/api/chat", direct_body)
        timed(f"{base}/v1/chat/completions", routed_body)

    setup_calls = sum(calls.values())
    direct, routed = [], []
    calls.clear()
    measuring_started = time.perf_counter()
    for _ in range(args.requests):  # interleaved, so both paths see the same machine state
        direct.append(timed(f"{ollama.url}/api/chat", direct_body))
        routed.append(timed(f"{base}/v1/chat/completions", routed_body))
    measured_s = time.perf_counter() - measuring_started
    total_calls = sum(calls.values())
    runtime_calls = sum(count for name, count in calls.items() if name.endswith("-runtime"))

    print(f"requests per path        : {args.requests} ({measured_s:.1f} s; set-up and warm-up made {setup_calls} DynamoDB calls)")
    print(f"direct  p50 / p99 (ms)   : {percentile(direct, 0.5):.2f} / {percentile(direct, 0.99):.2f}")
    print(f"gateway p50 / p99 (ms)   : {percentile(routed, 0.5):.2f} / {percentile(routed, 0.99):.2f}")
    print(f"added   p50 / p99 (ms)   : {percentile(routed, 0.5) - percentile(direct, 0.5):.2f} / "
          f"{percentile(routed, 0.99) - percentile(direct, 0.99):.2f}")
    print(f"added mean (ms)          : {statistics.mean(routed) - statistics.mean(direct):.2f}")
    print(f"DynamoDB calls / request : {total_calls / args.requests:.3f} (by call: "
          + ", ".join(f"{name}={count / args.requests:.3f}" for name, count in sorted(calls.items())) + ")")
    print(f"routing reads / request  : {runtime_calls / args.requests:.3f} (runtime table)")

    server.should_exit = True
    ollama.stop()
    stack.stop()


if __name__ == "__main__":
    main()
