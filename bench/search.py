"""Semantic search cost on the embedded stack: /index throughput and /search latency as the
caller's corpus grows (the search reads and ranks every chunk of the caller).

    .venv/bin/python bench/search.py [--sizes 100,1000,3000] [--dimensions 768] [--searches 20]

Embeddings come from a stand-in Ollama returning deterministic pseudo-random vectors of the given
dimension, so the numbers are the control plane's cost (DynamoDB reads, JSON decoding, cosine),
not a model's.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiplane_local.stack import start_local_stack

BATCH = 256  # chunks per /index call (the route's maximum)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,3000")
    parser.add_argument("--dimensions", type=int, default=768)
    parser.add_argument("--searches", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("aiplane").setLevel(logging.WARNING)

    stack = start_local_stack(start_dispatchers=False)
    try:
        run([int(size) for size in args.sizes.split(",")], args.dimensions, args.searches, stack.bootstrap["admin-api-key"])
    finally:
        stack.stop()


def run(sizes: list[int], dimensions: int, searches: int, admin_key: str) -> None:
    import os

    from fastapi.testclient import TestClient

    from functions.family_app import build_family_app
    from tests.integration.gateway.standins import OllamaStandIn

    class RandomEmbeddings(OllamaStandIn):
        def handle_POST(self, http: Any, path: str, body: dict[str, Any]) -> bool:
            if path != "/api/embed":
                return super().handle_POST(http, path, body)
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vectors = [[random.Random(text).uniform(-1, 1) for _ in range(dimensions)] for text in inputs]
            http._json({"model": body["model"], "embeddings": vectors})
            return True

    embedder = RandomEmbeddings("bench")
    client = TestClient(build_family_app("runtime"), headers={"X-API-Key": admin_key})
    suffix = str(time.time_ns())
    model = f"benchembed{suffix}"
    backend = client.post("/backends", json={"name": f"bench-{suffix}", "baseUrl": embedder.url, "type": "ollama"}).json()
    group = client.post("/groups", json={"name": f"bench-{suffix}", "purposeType": "Internal Embeddings"}).json()
    declared = client.post("/models", json={"model": model, "canEmbed": True, "contextLength": 8192}).json()
    client.post(f"/backend-affinity/{group['id']}/backends/{backend['id']}")
    client.post(f"/model-affinity/{group['id']}/models/{declared['id']}")
    os.environ["AIPLANE_DEFAULT_EMBED_MODEL"] = model

    print(f"{dimensions}-dimension vectors, {searches} searches per size (topk 10)")
    print(f"{'chunks':>8} {'index chunks/s':>15} {'search p50 ms':>14} {'search p99 ms':>14}")
    indexed, document = 0, 0
    for size in sizes:
        started = time.perf_counter()
        added = 0
        while indexed < size:
            count = min(BATCH, size - indexed)
            chunks = [f"chunk {document} {position} {suffix}" for position in range(count)]
            response = client.post("/index", json={"id": f"doc{document}", "chunks": chunks})
            assert response.status_code == 200, response.text
            indexed, added, document = indexed + count, added + count, document + 1
        rate = added / (time.perf_counter() - started) if added else float("nan")
        latencies = []
        for attempt in range(searches):
            begun = time.perf_counter()
            response = client.get("/search", params={"q": f"query {attempt}"})
            latencies.append((time.perf_counter() - begun) * 1000)
            assert response.status_code == 200 and len(response.json()["results"]) == min(10, size)
        print(f"{size:>8} {rate:>15.0f} {statistics.median(latencies):>14.1f} {percentile(latencies, 0.99):>14.1f}")
    embedder.stop()


if __name__ == "__main__":
    main()
