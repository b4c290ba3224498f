"""The streaming functions, from the built assets, started exactly as the Lambda Web Adapter starts
them (its bootstrap runs the handler script in the task root, with the function's environment),
and asked over loopback as the adapter asks: the SSE answer arrives event by event."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from aiplane_local import packaged
from aiplane_local.stack import free_port
from aiplane_shared.routes import STREAMING_ROUTES, group_for
from aiplane_shared.streaming import HANDLER, STREAMING_FUNCTIONS, streaming_environment
from events.generate import EVENTS_DIR

# What the adapter puts in x-amzn-request-context: API Gateway's request context, after the authorizer.
ADMIN_CONTEXT = {
    "authorizer": {"principalId": "p-1", "kind": "admin", "credential": "api_key"},
    "identity": {"sourceIp": "203.0.113.10"},
    "stage": "dev",
}
STREAMS = {
    "mlworker_scheduler": "/v1/scheduler/status/stream",  # the status now, then changes for 3 s
    "gpufarm_agents": "/api/v1/mcp/sse?window_s=2",  # the endpoint event, then heartbeats for 2 s
}


@pytest.fixture(scope="module")
def adapter_ports(sandbox, template_functions, dev_resources):
    started: dict[str, tuple] = {}
    try:
        for name in STREAMS:
            family, group = name.split("_", 1)
            function = template_functions[name]
            extra = {**streaming_environment(family, group), "_HANDLER": HANDLER, "AWS_LWA_PORT": str(free_port())}
            started[name] = packaged.start_behind_adapter(function, sandbox, dev_resources.aws_endpoint, extra)
        yield {name: port for name, (_, port) in started.items()}
    finally:
        for process, _ in started.values():
            process.terminate()
            process.wait(timeout=10)


def test_every_streaming_route_is_on_a_streaming_function():
    assert {f"{family}_{group_for(family, path)}" for family, _, path in STREAMING_ROUTES} == STREAMING_FUNCTIONS
    assert set(STREAMS) <= STREAMING_FUNCTIONS


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_sse_arrives_before_the_stream_ends(name, adapter_ports):
    headers = {"x-amzn-request-context": json.dumps(ADMIN_CONTEXT), "accept": "text/event-stream"}
    started = time.monotonic()
    with httpx.stream(
        "GET", f"http://127.0.0.1:{adapter_ports[name]}{STREAMS[name]}", headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = response.iter_raw()
        first = next(chunks)
        first_byte_s = time.monotonic() - started
        rest = b"".join(chunks)
    total_s = time.monotonic() - started
    assert first.startswith((b"retry:", b"event:", b"data:")), first
    assert (first + rest).count(b"\n\n") >= 2
    # Incremental: the first event arrived while the stream still had its window (seconds) to run.
    assert total_s - first_byte_s > 1.0 and first_byte_s < total_s / 2, (first_byte_s, total_s)


def test_buffered_routes_of_a_streaming_function_answer_too(adapter_ports):
    port = adapter_ports["mlworker_scheduler"]
    with_context = httpx.get(
        f"http://127.0.0.1:{port}/v1/scheduler/status", headers={"x-amzn-request-context": json.dumps(ADMIN_CONTEXT)}
    )
    assert with_context.status_code == 200, with_context.text
    assert httpx.get(f"http://127.0.0.1:{port}/v1/scheduler/status").status_code == 401


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_sample_event_is_answered_behind_the_adapter(name, sandbox, template_functions, dev_resources):
    family, group = name.split("_", 1)
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    extra = {**streaming_environment(family, group), "_HANDLER": HANDLER, "AWS_LWA_PORT": str(free_port())}
    response = packaged.answer_behind_adapter(
        template_functions[name], sandbox, dev_resources.aws_endpoint, event, extra
    )
    assert response["statusCode"] == 401, response  # the sample carries no credentials
    assert json.loads(response["body"])
