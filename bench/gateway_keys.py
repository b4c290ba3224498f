"""Gateway overhead with an ordinary user's virtual key, budgets and rate limits on:
/runtime/v1/chat/completions through the local stack vs the stand-in Ollama called directly, in
one run, and the DynamoDB calls per request.

    .venv/bin/python bench/gateway_keys.py [--requests 500]

The user's key has max_budget (daily reset), rpm_limit and tpm_limit, the user a budget and an rpm
limit, and the model a price. DynamoDB calls are counted on botocore's client (boto3 and PynamoDB
both go through it), per table, on the request path: the local dispatchers' threads (the spend-log
worker, schedules, TTL) and the routing snapshot's background refresh (`registry-refresh`, one Query
of the runtime table every 5 s, off the request path: printed apart) are not counted.
`max_parallel_requests` adds one write as each request ends (freeing its slot); `--parallel-limit`
measures that too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiplane_local.stack import start_local_stack

WARMUP_REQUESTS = 20
LITELLM_OVERHEAD = "2-12 ms median, 13-43 ms P99 added on 4 vCPU (its proxy benchmarks)"
MODEL = "benchkeys:latest"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--parallel-limit", action="store_true", help="also set max_parallel_requests on the key")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("aiplane").setLevel(logging.WARNING)
    os.environ["AIPLANE_GATEWAY_PRICES"] = json.dumps(
        {MODEL: {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}}
    )

    stack = start_local_stack(start_dispatchers=True)  # the spend-log worker settles as requests run
    import httpx
    from botocore.client import BaseClient

    from aiplane_local.server import BackgroundServer, build_root_app
    from tests.integration.gateway.standins import OllamaStandIn

    calls: Counter[str] = Counter()
    refresh_calls = 0  # the routing snapshot's background refresh, reported apart
    call_ms: defaultdict[str, list[float]] = defaultdict(list)
    transaction_items: list[int] = []
    make_api_call = BaseClient._make_api_call
    counting_on = threading.Event()

    def counting(client, operation, params):
        nonlocal refresh_calls
        # The local dispatchers' threads (the spend-log worker, schedules, TTL) and the routing snapshot's
        # background refresh are off the request path.
        if counting_on.is_set() and threading.current_thread().name == "registry-refresh":
            refresh_calls += 1
        if (
            counting_on.is_set()
            and client.meta.service_model.service_name == "dynamodb"
            and not threading.current_thread().name.startswith(("sqs-", "schedule-", "ttl-", "registry-refresh"))
        ):
            items = params.get("TransactItems") or [{}]
            table = params.get("TableName") or next(iter(items[0].values()), {}).get("TableName", "?")
            calls[f"{operation} {table}"] += 1
            if operation == "TransactWriteItems":
                transaction_items.append(len(items))
            started = time.perf_counter()
            try:
                return make_api_call(client, operation, params)
            finally:
                call_ms[f"{operation} {table}"].append((time.perf_counter() - started) * 1000)
        return make_api_call(client, operation, params)

    BaseClient._make_api_call = counting

    ollama = OllamaStandIn("bench", [MODEL])  # the sync cycle runs here: the backend must list the model
    server = BackgroundServer(build_root_app())

    base = f"{server.base_url}/runtime"
    admin = httpx.Client(headers={"X-API-Key": stack.bootstrap["admin-api-key"]}, timeout=30)
    suffix = uuid.uuid4().hex[:8]
    backend = admin.post(
        f"{base}/backends", json={"name": f"bench-{suffix}", "baseUrl": ollama.url, "type": "ollama"}
    ).json()
    group = admin.post(f"{base}/groups", json={"name": f"bench-{suffix}", "purposeType": "bench"}).json()
    model = admin.post(f"{base}/models", json={"model": MODEL, "canChat": True, "contextLength": 4096}).json()
    admin.post(f"{base}/model-affinity/{group['id']}/models/{model['id']}").raise_for_status()
    admin.post(f"{base}/backend-affinity/{group['id']}/backends/{backend['id']}").raise_for_status()
    deadline = time.monotonic() + 30  # the sync cycle runs here: wait until it records the model as served
    while (
        MODEL not in admin.get(f"{base}/backends/{backend['id']}").json().get("models", [])
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)

    registered = admin.post(
        f"{base}/register",
        json={"email": f"bench-{suffix}@example.com", "password": "correct-horse-42"},
        headers={"X-API-Key": ""},
    ).json()
    user_id = registered["user"]["id"]
    admin.post(
        f"{base}/access-control",
        json={"identity": user_id, "resource": "exec", "resourceType": "collection", "permission": "edit"},
    ).raise_for_status()
    admin.post(
        f"{base}/user/update",
        json={"user_id": user_id, "max_budget": 1000, "budget_duration": "30d", "rpm_limit": 1_000_000},
    ).raise_for_status()
    limits = {"max_budget": 1000, "budget_duration": "1d", "rpm_limit": 1_000_000, "tpm_limit": 1_000_000_000}
    if args.parallel_limit:
        limits["max_parallel_requests"] = 100
    user = httpx.Client(headers={"Authorization": f"Bearer {registered['token']}"}, timeout=30)
    generated = user.post(f"{base}/key/generate", json={"key_alias": "bench", **limits})
    generated.raise_for_status()
    client = httpx.Client(headers={"X-API-Key": generated.json()["key"]}, timeout=30)

    messages = [{"role": "user", "content": "hello"}]
    direct_body = {"model": MODEL, "messages": messages, "stream": False}
    routed_body = {"model": MODEL, "messages": messages, "max_tokens": 16}

    def timed(url: str, body: dict) -> float:
        started = time.perf_counter()
        response = client.post(url, json=body)
        elapsed = time.perf_counter() - started
        if response.is_error:
            raise SystemExit(f"{url}: {response.status_code} {response.text}")
        return elapsed * 1000

    for _ in range(WARMUP_REQUESTS):
        timed(f"{ollama.url}/api/chat", direct_body)
        timed(f"{base}/v1/chat/completions", routed_body)

    direct, routed = [], []
    counting_on.set()
    measuring_started = time.perf_counter()
    for _ in range(args.requests):  # interleaved, so both paths see the same machine state
        direct.append(timed(f"{ollama.url}/api/chat", direct_body))
        routed.append(timed(f"{base}/v1/chat/completions", routed_body))
    measured_s = time.perf_counter() - measuring_started
    counting_on.clear()
    total = sum(calls.values())
    identity = sum(count for name, count in calls.items() if name.endswith("-identity"))

    print(
        f"requests per path        : {args.requests} ({measured_s:.1f} s), user key with budget, rpm, tpm"
        + (", max_parallel_requests" if args.parallel_limit else "")
        + "; user budget and rpm; priced model"
    )
    print(f"direct  p50 / p99 (ms)   : {percentile(direct, 0.5):.2f} / {percentile(direct, 0.99):.2f}")
    print(f"gateway p50 / p99 (ms)   : {percentile(routed, 0.5):.2f} / {percentile(routed, 0.99):.2f}")
    print(
        f"added   p50 / p99 (ms)   : {percentile(routed, 0.5) - percentile(direct, 0.5):.2f} / "
        f"{percentile(routed, 0.99) - percentile(direct, 0.99):.2f}"
    )
    print(
        f"DynamoDB calls / request : {total / args.requests:.3f} on the request path "
        f"({identity / args.requests:.3f} auth + limits, identity table); by call: "
        + ", ".join(f"{name}={count / args.requests:.3f}" for name, count in sorted(calls.items()))
    )
    print(f"off the request path     : {refresh_calls} calls of the routing snapshot's background refresh")
    print(
        "time per DynamoDB call   : "
        + ", ".join(
            f"{name} p50 {percentile(samples, 0.5):.1f} / p99 {percentile(samples, 0.99):.1f} ms"
            for name, samples in sorted(call_ms.items())
        )
    )
    if transaction_items:
        print(
            f"admission transaction    : {statistics.mean(transaction_items):.1f} items (condition checks of key, user "
            "and access grant, the counters of each limited scope)"
        )
    dynamodb_ms = sum(sum(samples) for samples in call_ms.values()) / args.requests
    added_mean = statistics.mean(routed) - statistics.mean(direct)
    print(
        f"added mean (ms)          : {added_mean:.2f}, of which waiting on DynamoDB (moto here) {dynamodb_ms:.2f}, "
        f"the rest {added_mean - dynamodb_ms:.2f}"
    )
    print(f"LiteLLM (published)      : {LITELLM_OVERHEAD}")
    info = user.get(f"{base}/key/info", params={"key": generated.json()["key"]}).json()["info"]
    print(f"key spend after the run  : {info['spend']:.6f} (settled by the spend-log worker)")

    server.stop()
    ollama.stop()
    stack.stop()


if __name__ == "__main__":
    main()
