"""Gateway overhead: /runtime/v1/chat/completions through the local stack vs the stand-in
Ollama called directly, DynamoDB calls per routed request, and one process's throughput at 50
concurrent streams.

    .venv/bin/python bench/gateway.py [--requests 500] [--streams 50 --per-stream 10] [--scenario latency|streams]

Scenario `latency` prints p50/p99 of both paths, the added latency, and the DynamoDB calls per
request (all of them, and the runtime-table ones that routing makes), counted by botocore hooks
on every DynamoDB client in the process. Scenario `streams` prints streams/s, chunks/s and the
time to first token with 50 clients streaming at once.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn

from aiplane_local.stack import start_local_stack
from tests.integration.gateway.standins import OllamaStandIn

WARMUP_REQUESTS = 20
LITELLM_OVERHEAD = "2-12 ms median, 13-43 ms P99 added on 4 vCPU (its proxy benchmarks)"
STREAMS = 50


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Bench:
    """The local stack, the app on a loopback port and one routed model served by a stand-in Ollama."""

    client: httpx.Client
    base: str
    ollama: OllamaStandIn
    model: str
    calls: Counter[str]


def count_dynamodb_calls() -> Counter[str]:
    """Counts every DynamoDB call in the process (boto3 and PynamoDB), by operation and table."""
    from botocore.client import BaseClient
    from pynamodb.connection.base import Connection

    calls: Counter[str] = Counter()
    make_api_call = BaseClient._make_api_call

    def counting(client, operation, params):  # every boto3 client goes through here
        if client.meta.service_model.service_name == "dynamodb":
            calls[f"{operation} {params.get('TableName', '?')}"] += 1
        return make_api_call(client, operation, params)

    BaseClient._make_api_call = counting
    pynamodb_call = Connection._make_api_call

    def counting_pynamodb(connection, operation, operation_kwargs):  # PynamoDB sends requests itself
        calls[f"{operation} {operation_kwargs.get('TableName', '?')}"] += 1
        return pynamodb_call(connection, operation, operation_kwargs)

    Connection._make_api_call = counting_pynamodb
    return calls


def start_bench(stack) -> tuple[Bench, uvicorn.Server]:
    from aiplane_local.server import BackgroundServer, build_root_app

    calls = count_dynamodb_calls()
    ollama = OllamaStandIn("bench")
    server = BackgroundServer(build_root_app())

    base = f"{server.base_url}/runtime"
    client = httpx.Client(
        headers={"X-API-Key": stack.bootstrap["admin-api-key"]},
        timeout=30,
        limits=httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=STREAMS + 10),
    )
    suffix = str(time.time_ns())
    backend = client.post(
        f"{base}/backends", json={"name": f"bench-{suffix}", "baseUrl": ollama.url, "type": "ollama"}
    ).json()
    group = client.post(f"{base}/groups", json={"name": f"bench-{suffix}", "purposeType": "bench"}).json()
    model = client.post(
        f"{base}/models", json={"model": "benchmodel:latest", "canChat": True, "canStream": True, "contextLength": 4096}
    ).json()
    client.post(f"{base}/backend-affinity/{group['id']}/backends/{backend['id']}").raise_for_status()
    client.post(f"{base}/model-affinity/{group['id']}/models/{model['id']}").raise_for_status()
    return Bench(client, base, ollama, "benchmodel:latest", calls), server


def added_latency(bench: Bench, requests: int) -> None:
    """Buffered chat through the stack vs the stand-in directly, interleaved; DynamoDB calls per request."""
    messages = [{"role": "user", "content": "hello"}]
    direct_body = {"model": bench.model, "messages": messages, "stream": False}
    routed_body = {"model": bench.model, "messages": messages}

    def timed(url: str, body: dict) -> float:
        started = time.perf_counter()
        response = bench.client.post(url, json=body)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed * 1000

    for _ in range(WARMUP_REQUESTS):
        timed(f"{bench.ollama.url}/api/chat", direct_body)
        timed(f"{bench.base}/v1/chat/completions", routed_body)

    setup_calls = sum(bench.calls.values())
    direct, routed = [], []
    bench.calls.clear()
    measuring_started = time.perf_counter()
    for _ in range(requests):  # interleaved, so both paths see the same machine state
        direct.append(timed(f"{bench.ollama.url}/api/chat", direct_body))
        routed.append(timed(f"{bench.base}/v1/chat/completions", routed_body))
    measured_s = time.perf_counter() - measuring_started
    total_calls = sum(bench.calls.values())
    runtime_calls = sum(count for name, count in bench.calls.items() if name.endswith("-runtime"))

    print(
        "== added latency (buffered chat, one client, bootstrap admin key: no limits; "
        "bench/gateway_keys.py measures an ordinary user's key with limits on)"
    )
    print(
        f"requests per path        : {requests} ({measured_s:.1f} s; set-up and warm-up made {setup_calls} DynamoDB calls)"
    )
    print(f"direct  p50 / p99 (ms)   : {percentile(direct, 0.5):.2f} / {percentile(direct, 0.99):.2f}")
    print(f"gateway p50 / p99 (ms)   : {percentile(routed, 0.5):.2f} / {percentile(routed, 0.99):.2f}")
    print(
        f"added   p50 / p99 (ms)   : {percentile(routed, 0.5) - percentile(direct, 0.5):.2f} / "
        f"{percentile(routed, 0.99) - percentile(direct, 0.99):.2f}"
    )
    print(f"added mean (ms)          : {statistics.mean(routed) - statistics.mean(direct):.2f}")
    print(
        f"DynamoDB calls / request : {total_calls / requests:.3f} (by call: "
        + ", ".join(f"{name}={count / requests:.3f}" for name, count in sorted(bench.calls.items()))
        + ")"
    )
    print(f"routing reads / request  : {runtime_calls / requests:.3f} (runtime table)")
    print(f"LiteLLM (published)      : {LITELLM_OVERHEAD}")


def stream_throughput(bench: Bench, streams: int, per_stream: int) -> None:
    """`streams` clients, each streaming `per_stream` completions back to back through one process."""
    body = {
        "model": bench.model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "stream a few words back to me please"}],
    }
    first_token_ms: list[float] = []
    chunks = [0]
    lock = threading.Lock()

    def one_client(_: int) -> None:
        for _ in range(per_stream):
            started = time.perf_counter()
            first = None
            count = 0
            with bench.client.stream("POST", f"{bench.base}/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        count += 1
                        if first is None and '"content": "' in line and '"content": ""' not in line:
                            first = (time.perf_counter() - started) * 1000
            with lock:
                first_token_ms.append(first or 0.0)
                chunks[0] += count

    one_client(0)  # warm-up
    first_token_ms.clear()
    chunks[0] = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(one_client, range(streams)))
    elapsed = time.perf_counter() - started
    completed = len(first_token_ms)
    print(f"== throughput at {streams} concurrent streams (one uvicorn process, stand-in Ollama)")
    print(
        f"streams completed        : {completed} in {elapsed:.1f} s = {completed / elapsed:.1f} streams/s, "
        f"{chunks[0] / elapsed:.0f} chunks/s"
    )
    print(
        f"time to first token p50 / p99 (ms): {percentile(first_token_ms, 0.5):.2f} / {percentile(first_token_ms, 0.99):.2f}"
    )


# One function per scenario; each takes the bench and prints its figures.
SCENARIOS = {
    "latency": lambda bench, args: added_latency(bench, args.requests),
    "streams": lambda bench, args: stream_throughput(bench, args.streams, args.per_stream),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--streams", type=int, default=STREAMS)
    parser.add_argument("--per-stream", type=int, default=10)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append", help="default: all")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("aiplane").setLevel(logging.WARNING)

    stack = start_local_stack(start_dispatchers=False)
    bench, server = start_bench(stack)
    try:
        for name in args.scenario or list(SCENARIOS):
            SCENARIOS[name](bench, args)
    finally:
        server.stop()
        bench.ollama.stop()
        stack.stop()


if __name__ == "__main__":
    main()
