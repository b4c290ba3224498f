"""Semantic search cost on the embedded stack: /search latency as the caller's corpus grows (the
search reads the caller's float32 vector blocks, ranks them with numpy, then reads the top k texts).

    .venv/bin/python bench/search.py [--sizes 1000,10000,50000] [--dimensions 768] [--searches 20]

The corpus is seeded straight through the data layer (`aiplane.files.vectors`, documents of 256
chunks with pseudo-random vectors), so seeding is quick; each search goes through the runtime app
and embeds its query with a stand-in Ollama (deterministic pseudo-random vectors), so the numbers
are the control plane's cost (DynamoDB reads in moto, decoding, ranking), not a model's.
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
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--dimensions", type=int, default=768)
    parser.add_argument("--searches", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("aiplane").setLevel(logging.WARNING)

    stack = start_local_stack(start_dispatchers=False)
    try:
        run(
            [int(size) for size in args.sizes.split(",")],
            args.dimensions,
            args.searches,
            stack.bootstrap["admin-api-key"],
        )
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
            http.send_json({"model": body["model"], "embeddings": vectors})
            return True

    embedder = RandomEmbeddings("bench")
    client = TestClient(build_family_app("runtime"), headers={"X-API-Key": admin_key})
    suffix = str(time.time_ns())
    model = f"benchembed{suffix}"
    backend = client.post(
        "/backends", json={"name": f"bench-{suffix}", "baseUrl": embedder.url, "type": "ollama"}
    ).json()
    group = client.post("/groups", json={"name": f"bench-{suffix}", "purposeType": "Internal Embeddings"}).json()
    declared = client.post("/models", json={"model": model, "canEmbed": True, "contextLength": 8192}).json()
    client.post(f"/backend-affinity/{group['id']}/backends/{backend['id']}")
    client.post(f"/model-affinity/{group['id']}/models/{declared['id']}")
    os.environ["AIPLANE_DEFAULT_EMBED_MODEL"] = model
    from aiplane.settings import get_settings

    get_settings.cache_clear()  # read when the stack started

    import numpy as np

    from aiplane.clock import now_iso
    from aiplane.files import ranking, vectors
    from aiplane.settings import get_settings

    owner = client.get("/ui/me").json()["id"]  # the admin key's index
    generator = np.random.default_rng(0)
    print(f"{dimensions}-dimension vectors, {searches} searches per size (topk 10)")
    print("cold read: the first search's block reads in a fresh container (moto's DynamoDB: a few MB/s);")
    print(
        "search: through the runtime app with the container's blocks cached (one version GetItem, numpy, top-k texts)"
    )
    print("rank: the numpy ranking alone (ranking.rank over the cached blocks)")
    print(
        f"{'chunks':>8} {'seeded chunks/s':>16} {'cold read s':>12} {'search p50 ms':>14} {'search p99 ms':>14}"
        f" {'rank p50 ms':>12}"
    )
    indexed, document = 0, 0
    for size in sizes:
        started = time.perf_counter()
        added = 0
        while indexed < size:
            count = min(BATCH, size - indexed)
            chunks = [f"chunk {document} {position} {suffix}" for position in range(count)]
            matrix = generator.uniform(-1, 1, (count, dimensions)).astype("<f4")
            vectors.write_document(
                owner,
                f"doc{document}",
                chunks,
                matrix.tobytes(),
                dimensions,
                model=model,
                job_id=None,
                leaser_id=None,
                now=now_iso(),
            )
            indexed, added, document = indexed + count, added + count, document + 1
        rate = added / (time.perf_counter() - started) if added else float("nan")
        begun = time.perf_counter()
        blocks = vectors.blocks(owner, get_settings().search_max_chunks)  # outside the request budget: moto is slow
        cold = time.perf_counter() - begun
        query = generator.uniform(-1, 1, dimensions)
        rank_ms = []
        for _ in range(searches):
            begun = time.perf_counter()
            ranking.rank(query, blocks, 10, None)
            rank_ms.append((time.perf_counter() - begun) * 1000)
        latencies = []
        for attempt in range(searches):
            begun = time.perf_counter()
            response = client.get("/search", params={"q": f"query {attempt}"})
            latencies.append((time.perf_counter() - begun) * 1000)
            assert response.status_code == 200 and len(response.json()["results"]) == min(10, size), response.text
        print(
            f"{size:>8} {rate:>16.0f} {cold:>12.1f} {statistics.median(latencies):>14.1f} {percentile(latencies, 0.99):>14.1f}"
            f" {statistics.median(rank_ms):>12.1f}"
        )
    embedder.stop()


if __name__ == "__main__":
    main()
