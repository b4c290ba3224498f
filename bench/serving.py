"""What the agent serves, through the local stack as `make run` runs it (HTTP server + the one local agent):
Jupyter start → running, and predict latency through the stack vs the agent's endpoint vs onnxruntime called
directly on the same model, in the same run.

    python -m bench.serving [--jupyter 3] [--predictions 200]

Prints numbers; asserts only that the answers are right.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def line(label: str, samples_ms: list[float]) -> str:
    return f"{label:<34} p50 {percentile(samples_ms, 0.5):8.2f} ms   p99 {percentile(samples_ms, 0.99):8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jupyter", type=int, default=3, help="Jupyter services started one after another")
    parser.add_argument("--predictions", type=int, default=200, help="predictions timed per path")
    args = parser.parse_args()

    from aiplane_local.stack import start_local_stack

    stack = start_local_stack(start_dispatchers=False)

    from aiplane_local.gpu_agents import LocalAgent
    from aiplane_local.provision import publish_api_urls
    from aiplane_local.server import (  # after the endpoint is set: models read it at import
        BackgroundServer,
        build_root_app,
    )
    from aiplane_shared.resources import ADMIN_API_KEY_SECRET

    server = BackgroundServer(build_root_app())
    base = server.base_url
    publish_api_urls(stack.provisioned.prefix, "us-east-1", base)
    admin_key = stack.bootstrap[ADMIN_API_KEY_SECRET.name]
    agent = LocalAgent(f"{base}/mlworker", admin_key, gpufarm_url=f"{base}/gpufarm", service_slots=1)
    try:
        bench_jupyter(base, admin_key, args.jupyter)
        bench_predict(base, args.predictions)
    finally:
        agent.stop()
        server.stop()
        stack.stop()


def wait(condition, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit("timed out")


def bench_jupyter(base: str, admin_key: str, count: int) -> None:
    import httpx

    seconds = []
    with httpx.Client(base_url=f"{base}/mlworker", headers={"X-API-Key": admin_key}, timeout=30) as mlworker:
        for index in range(count):
            started = time.perf_counter()
            service = mlworker.post("/v1/jupyter/services", json={"name": f"bench-{index}"}).json()

            def current(service_id: str = service["id"]) -> dict:
                return next(item for item in mlworker.get("/v1/jupyter/services").json() if item["id"] == service_id)

            running = wait(lambda: (item := current())["status"] != "starting" and item, 180)
            seconds.append(time.perf_counter() - started)
            assert running["status"] == "running", running
            status = httpx.get(f"{running['url']}api/status", headers={"Authorization": f"token {service['token']}"})
            assert status.status_code == 200
            mlworker.delete(f"/v1/jupyter/services/{service['id']}")
            wait(lambda: current()["status"] == "stopped", 60)
    print(
        f"Jupyter start → running ({count} services, one at a time): median {statistics.median(seconds):.2f} s, "
        f"min {min(seconds):.2f} s, max {max(seconds):.2f} s"
    )


def bench_predict(base: str, count: int) -> None:
    import httpx
    import numpy
    import onnxruntime

    from aiplane.identity.api_keys import issue_api_key
    from aiplane.identity.users import create_user
    from tests.onnx_models import affine_model

    model_bytes = affine_model()
    user = create_user(f"bench-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery 9", families=["gpufarm"])
    headers = {"Authorization": f"Bearer {issue_api_key(user.user_id, 'bench').api_key}"}
    inputs = [[1.0, 2.0, 3.0]]
    with httpx.Client(base_url=f"{base}/gpufarm", headers=headers, timeout=30) as gpufarm:
        model_id = gpufarm.post("/api/v1/models/upload", files={"model": ("affine.onnx", model_bytes)}).json()[
            "model_id"
        ]
        wait(lambda: gpufarm.get(f"/api/v1/models/{model_id}").json()["status"] == "ready", 60)
        from aiplane.commerce.records import ModelRecord, model_key

        endpoint = ModelRecord.get(model_key(model_id), "META").endpoint_url

        def through_stack() -> None:
            answer = gpufarm.post(f"/api/v1/models/{model_id}/predict", json={"inputs": {"x": inputs}})
            assert answer.json()["outputs"] == {"y": [[3.0, 5.0, 7.0]]}, answer.text

        with httpx.Client(timeout=30) as direct_http:

            def at_agent() -> None:
                assert direct_http.post(endpoint, json={"inputs": {"x": inputs}}).json()["outputs"] == {
                    "y": [[3.0, 5.0, 7.0]]
                }

            session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
            feed = {"x": numpy.asarray(inputs, dtype="float32")}

            def in_process() -> None:
                assert session.run(None, feed)[0].tolist() == [[3.0, 5.0, 7.0]]

            timings = {
                label: timed(call, count)
                for label, call in (
                    ("through the stack (API → agent)", through_stack),
                    ("the agent's endpoint directly", at_agent),
                    ("onnxruntime in this process", in_process),
                )
            }
    for label, samples in timings.items():
        print(line(label, samples))
    stack_p50, direct_p50 = (
        percentile(timings["through the stack (API → agent)"], 0.5),
        percentile(timings["onnxruntime in this process"], 0.5),
    )
    stack_p99, direct_p99 = (
        percentile(timings["through the stack (API → agent)"], 0.99),
        percentile(timings["onnxruntime in this process"], 0.99),
    )
    print(
        f"ratio stack / onnxruntime: p50 {stack_p50 / direct_p50:.0f}x, p99 {stack_p99 / direct_p99:.0f}x "
        f"({count} predictions each, CPU provider)"
    )


def timed(call, count: int) -> list[float]:
    for _ in range(5):  # warm up connections and the session
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


if __name__ == "__main__":
    main()
