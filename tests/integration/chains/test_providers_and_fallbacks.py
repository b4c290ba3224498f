"""A chain's model steps honour `provider`/`providers` (backend types, in order of preference) and
`model`/`models` (the rest are the gateway's fallbacks), against stand-in backends on loopback:
one failing, one working."""

from __future__ import annotations

import uuid

import pytest

from aiplane.gateway import routing
from tests.integration.chains.test_tasks_route import end, run
from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.standins import OllamaStandIn, OpenAIStandIn


@pytest.fixture
def gateway(runtime, set_setting):
    set_setting("AIPLANE_CHAINS_LLM_BASE_URL", None)  # chains use the runtime's own gateway
    routing.reset_cooldowns()
    return Gateway(runtime)


@pytest.fixture
def two_backends(gateway):
    """One model served by an Ollama backend and a vLLM backend in one group; the Ollama one fails."""
    model = f"chainprov{uuid.uuid4().hex[:8]}"
    ollama, vllm = OllamaStandIn("ollama", [model]), OpenAIStandIn("vllm", [model])
    ollama.failing = True
    group = gateway.group(f"g{model}")
    gateway.join(
        group,
        backends=(gateway.backend(f"o{model}", ollama.url, "ollama"), gateway.backend(f"v{model}", vllm.url, "vllm")),
        models=(gateway.model(model),),
    )
    yield model, ollama, vllm
    ollama.stop()
    vllm.stop()


def ask(runtime, config):
    tasks = [{"id": "ask", "handler": "raw_string", "execute_config": config, "transition": end()}]
    response = run(runtime, tasks, "hi")
    assert response.status_code == 200, response.text
    return response.json()["output"]


def test_providers_are_tried_in_order_and_a_failing_one_fails_over(runtime, two_backends):
    model, ollama, vllm = two_backends
    assert ask(runtime, {"model": model, "provider": "ollama", "providers": ["vllm"]}) == "vllm says: hi"
    assert ollama.chat_calls() == 1 and vllm.chat_calls() == 1  # the preferred provider first, then the next


def test_a_provider_limits_the_backends(runtime, two_backends):
    model, ollama, vllm = two_backends
    assert ask(runtime, {"model": model, "provider": "vllm"}) == "vllm says: hi"
    assert ollama.chat_calls() == 0
    tasks = [
        {
            "id": "ask",
            "handler": "raw_string",
            "execute_config": {"model": model, "provider": "ollama"},
            "transition": end(),
        }
    ]
    failed = run(runtime, tasks, "hi")  # only the failing provider: the chain fails, it never reaches vLLM
    assert failed.status_code == 502 and vllm.chat_calls() == 1


def test_the_chains_other_models_are_fallbacks(runtime, gateway, two_backends):
    model, ollama, vllm = two_backends
    failing_model = f"chainfail{uuid.uuid4().hex[:8]}"
    broken = OllamaStandIn("broken", [failing_model])
    broken.failing = True
    try:
        group = gateway.group(f"g{failing_model}")
        gateway.join(
            group,
            backends=(gateway.backend(f"b{failing_model}", broken.url, "ollama"),),
            models=(gateway.model(failing_model),),
        )
        assert (
            ask(runtime, {"model": failing_model, "models": [model], "provider": "ollama", "providers": ["vllm"]})
            == "vllm says: hi"
        )
        assert broken.chat_calls() >= 1
        assert ask(runtime, {"model": "nosuchmodel", "models": [model], "providers": ["vllm"]}) == "vllm says: hi"
    finally:
        broken.stop()
