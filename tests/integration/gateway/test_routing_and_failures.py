"""Routing strategies and failure handling against stand-in backends on loopback: weighted
shuffle, least-busy, latency- and usage-based routing, retries, failover on 429/5xx, cooldowns
shared through DynamoDB (seen from a second process), model and context-window fallbacks, and a
backend's 4xx reaching the client."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aiplane.gateway import inference, routing
from aiplane.gateway.schemas import ChatCompletionBody
from tests.integration.gateway.standins import OllamaStandIn


@pytest.fixture
def standins():
    started: list = []

    def make(name: str, kind=OllamaStandIn, **kwargs):
        standin = kind(name, **kwargs)
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


def pool(gateway, unique, *backends, strategy="simple-shuffle", **model_fields):
    """A group with the given (stand-in, weight) backends and one chat model; returns (model name, backend ids)."""
    group_id = gateway.group(unique("g"), strategy=strategy)
    ids = [gateway.backend(unique("b"), standin.url, weight=weight) for standin, weight in backends]
    model = unique("m")
    gateway.join(group_id, backends=tuple(ids), models=(gateway.model(model, **model_fields),))
    return model, ids


def ask(runtime, model, content="x", **fields):
    return runtime.post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": content}], **fields}
    )


def test_a_weighted_pool_splits_traffic_by_weight(runtime, gateway, standins, unique):
    light, heavy, drained = standins("light"), standins("heavy"), standins("drained")
    model, _ = pool(gateway, unique, (light, 1), (heavy, 3), (drained, 0))
    requests = 300
    for _ in range(requests):
        assert ask(runtime, model).status_code == 200
    share = heavy.chat_calls() / requests
    # Expected 0.75; three standard deviations (sqrt(0.75 * 0.25 / 300) = 0.025) either side.
    assert 0.675 < share < 0.825, (light.chat_calls(), heavy.chat_calls())
    assert light.chat_calls() + heavy.chat_calls() == requests and drained.chat_calls() == 0


def test_least_busy_sends_nothing_to_a_backend_with_a_request_in_flight(runtime, gateway, standins, unique):
    busy, idle = standins("busy"), standins("idle")
    busy.hold = threading.Event()  # its answers wait: whatever reaches it stays in flight
    model, _ = pool(gateway, unique, (busy, 1), (idle, 1), strategy="least-busy")
    body = ChatCompletionBody.model_validate({"model": model, "messages": [{"role": "user", "content": "x"}]})
    with ThreadPoolExecutor(1) as background:
        # With both idle the pick is a coin toss: ask until one request is in flight on `busy`.
        for _ in range(30):
            pending = background.submit(inference.chat_completion, body)
            while not pending.done() and busy.chat_calls() == 0:
                time.sleep(0.01)
            if busy.chat_calls():
                break
            pending.result()
        assert busy.chat_calls() == 1 and not pending.done()
        answered_idle = idle.chat_calls()
        for _ in range(8):  # one by one: every request sees one in flight there and none here
            inference.chat_completion(body)
        assert busy.chat_calls() == 1 and idle.chat_calls() == answered_idle + 8
        busy.hold.set()
        pending.result(timeout=30)


def test_latency_based_routing_prefers_the_faster_backend(runtime, gateway, standins, unique):
    slow, fast = standins("slow"), standins("fast")
    slow.delay_s = 0.2
    model, _ = pool(gateway, unique, (slow, 1), (fast, 1), strategy="latency-based-routing")
    for _ in range(10):
        assert ask(runtime, model).status_code == 200
    assert slow.chat_calls() <= 1 and fast.chat_calls() >= 9  # measured once at most, then avoided


def test_usage_based_routing_evens_out_tokens_per_minute(runtime, gateway, standins, unique):
    first, second = standins("first"), standins("second")
    model, _ = pool(gateway, unique, (first, 1), (second, 1), strategy="usage-based-routing")
    for _ in range(10):
        assert ask(runtime, model).status_code == 200
    assert first.chat_calls() == second.chat_calls() == 5  # every answer costs the same 7 tokens


def test_a_transient_failure_is_retried_on_the_same_backend(runtime, gateway, standins, unique):
    flaky, other = standins("flaky"), standins("other")
    flaky.failures = [(503, {"error": "warming up"}, {})]
    model, _ = pool(gateway, unique, (flaky, 1), (other, 0))
    response = ask(runtime, model)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "flaky says: x"
    assert flaky.chat_calls() == 2 and other.chat_calls() == 0


def test_a_429_fails_over_and_the_cooldown_is_seen_by_a_second_process(runtime, gateway, standins, unique):
    limited, spare = standins("limited"), standins("spare")
    limited.failures = [(429, {"error": "slow down"}, {"Retry-After": "7"})]
    model, (limited_id, spare_id) = pool(gateway, unique, (limited, 1), (spare, 0))
    response = ask(runtime, model)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "spare says: x"
    assert limited.chat_calls() == 1  # a 429 is not retried on the same backend

    # Another container: a fresh process, with its own (empty) caches, reads the shared cooldown.
    check = "from aiplane.gateway import routing; import sys; sys.exit(0 if routing.cooling_down(sys.argv[1]) else 3)"
    for backend_id, expected in ((limited_id, 0), (spare_id, 3)):
        result = subprocess.run(
            [sys.executable, "-c", check, backend_id], env=dict(os.environ), capture_output=True, timeout=60
        )
        assert result.returncode == expected, result.stderr.decode()[-2000:]

    # Here too the cooling backend comes last: the spare serves while the limited one rests.
    for _ in range(3):
        assert ask(runtime, model).json()["choices"][0]["message"]["content"] == "spare says: x"
    assert limited.chat_calls() == 1


def test_5xx_fail_over_and_cool_down_after_allowed_fails(runtime, gateway, gateway_settings, standins, unique):
    gateway_settings(gateway_allowed_fails=2)
    broken, healthy = standins("broken"), standins("healthy")
    broken.failing = True
    model, (broken_id, _) = pool(gateway, unique, (broken, 1), (healthy, 0))
    for _ in range(5):
        response = ask(runtime, model)
        assert response.status_code == 200 and "healthy says" in response.text
    assert broken.chat_calls() == 2 and routing.cooling_down(broken_id)

    healthy.failing = True
    routing.reset_cooldowns()
    failed = ask(runtime, model)
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "backend_error"


def test_a_backends_4xx_reaches_the_client_with_its_message(runtime, gateway, standins, unique):
    strict, spare = standins("strict"), standins("spare")
    strict.failures = [
        (
            400,
            {
                "error": {
                    "message": "tools[0].function.parameters is not a valid schema",
                    "type": "invalid_request_error",
                }
            },
            {},
        )
    ]
    model, _ = pool(gateway, unique, (strict, 1), (spare, 0))
    response = ask(runtime, model)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (
        error["message"] == "tools[0].function.parameters is not a valid schema" and error["code"] == "backend_rejected"
    )
    assert set(error) == {"code", "message", "param", "type"}
    assert spare.chat_calls() == 0  # the request was at fault, not the backend


def test_every_backend_rate_limited_is_a_429_with_retry_after(runtime, gateway, standins, unique):
    only = standins("only")
    only.failures = [(429, {"error": "quota"}, {"Retry-After": "12"})]
    model, _ = pool(gateway, unique, (only, 1))
    response = ask(runtime, model)
    assert response.status_code == 429 and response.headers["retry-after"] == "12"
    assert response.json()["error"]["message"] == "quota"


def test_fallbacks_across_models_when_every_backend_fails(runtime, gateway, standins, unique):
    down, backup = standins("down"), standins("backup")
    down.failing = True
    backup_model, _ = pool(gateway, unique, (backup, 1))
    model, _ = pool(gateway, unique, (down, 1), fallbacks=[unique("undeclared"), backup_model])
    response = ask(runtime, model)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == backup_model and "backup says" in response.text

    # LiteLLM's per-request `fallbacks` work too.
    plain, _ = pool(gateway, unique, (down, 1))
    assert ask(runtime, plain, fallbacks=[backup_model]).json()["model"] == backup_model


def test_context_window_fallback(runtime, gateway, standins, unique):
    small, large = standins("small"), standins("large")
    long_model, _ = pool(gateway, unique, (large, 1), contextLength=100_000)
    short_model, _ = pool(gateway, unique, (small, 1), contextLength=10, contextWindowFallbacks=[long_model])
    response = ask(runtime, short_model, content="y" * 400)  # about 101 tokens: over the declared 10
    assert response.status_code == 200 and response.json()["model"] == long_model and small.chat_calls() == 0

    # The backend's own verdict counts too: its context-length 400 moves to the fallback.
    undeclared_limit, _ = pool(gateway, unique, (small, 1), contextLength=0, contextWindowFallbacks=[long_model])
    small.failures = [(400, {"error": "prompt is too long: the context length is 2048 tokens"}, {})]
    response = ask(runtime, undeclared_limit, content="z")
    assert response.status_code == 200 and response.json()["model"] == long_model

    no_fallback, _ = pool(gateway, unique, (small, 1), contextLength=10)
    refused = ask(runtime, no_fallback, content="y" * 400)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
