"""Warm latency of one routed GET through the Mangum handler against moto: median and p95.

The request is a protected route with an API key, so it includes the auth path (one Secrets
Manager read, cached) and the handler's own DynamoDB work (gpufarm /health: one DescribeTable).
Also prints the Lambda-handler overhead on a route that touches no AWS at all (appproxy /health).

Run: .venv/bin/python bench/warm.py [--requests 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

from aiplane_local.stack import start_local_stack  # noqa: E402  (before any boto3 client)
from events.generate import api_gateway_event  # noqa: E402


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(function: str, event: dict, requests: int) -> list[float]:
    from aiplane_local.lambda_runtime import LocalLambdaContext, load_handler

    handler = load_handler(function)
    context = LocalLambdaContext(function_name=function)
    for _ in range(20):  # warm-up: imports, clients, caches
        handler(event, context)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = handler(event, context)
        samples.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == 200, response
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    stack = start_local_stack(start_dispatchers=False)
    try:
        manager = {"X-BackendAI-Token": stack.bootstrap["appproxy-manager-token"]}
        cases = [
            ("gpufarm_health", "gpufarm", "/health", {}, "DescribeTable"),
            ("appproxy_health", "appproxy", "/health/status", manager, "auth + Query"),
            ("appproxy_health", "appproxy", "/health", {}, "no AWS call"),
        ]
        print(f"warm handler latency over {args.requests} requests (ms), moto server at {stack.aws_endpoint}")
        for function, family, path, headers, note in cases:
            event = api_gateway_event(family, "GET", path)
            event["headers"].update(headers)
            samples = measure(function, event, args.requests)
            label = f"{function} GET {path} ({note})"
            print(f"{label:<60} median {statistics.median(samples):6.2f}  p95 {percentile(samples, 0.95):6.2f}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
