"""The OpenAI surface as the official SDK sees it: every chat parameter reaches the backends that
take it, streamed tool calls and usage come through, GET /v1/models/{model}, and Ollama keeps
multi-turn tool calls."""

from __future__ import annotations

import json

import openai
import pytest

from tests.integration.gateway.standins import OllamaStandIn, OpenAIStandIn
from tests.integration.gateway.test_inference import sdk

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def vllm(gateway, unique):
    """A vLLM (OpenAI-compatible) stand-in serving one chat model."""
    standin = OpenAIStandIn("vllm", models=[])
    model = unique("qwen")
    group_id = gateway.group(unique("g"))
    gateway.join(
        group_id, backends=(gateway.backend(unique("v"), standin.url, "vllm"),), models=(gateway.model(model),)
    )
    yield standin, model
    standin.stop()


@pytest.fixture
def ollama_model(gateway, unique):
    standin = OllamaStandIn("ollama")
    model = unique("llama")
    group_id = gateway.group(unique("g"))
    gateway.join(group_id, backends=(gateway.backend(unique("o"), standin.url),), models=(gateway.model(model),))
    yield standin, model
    standin.stop()


def test_every_chat_parameter_is_forwarded(runtime, vllm):
    standin, model = vllm
    fields = {
        "temperature": 0.5,
        "max_tokens": 64,
        "top_p": 0.9,
        "stop": ["###"],
        "n": 2,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
        "seed": 42,
        "user": "user_123",
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "top_logprobs": 2,
        "logit_bias": {"50256": -100},
        "parallel_tool_calls": False,
    }
    response = runtime.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "x"}], **fields, "not_an_openai_field": 1},
    )
    assert response.status_code == 200, response.text
    sent = standin.bodies[-1]
    assert {key: sent.get(key) for key in fields} == fields and "not_an_openai_field" not in sent
    assert "stream_options" not in sent  # only streams take it

    runtime.post(
        "/v1/chat/completions",
        json={"model": model, "stream": True, "seed": 7, "messages": [{"role": "user", "content": "s"}]},
    )
    assert standin.bodies[-1]["seed"] == 7 and standin.bodies[-1]["stream_options"] == {"include_usage": True}


def test_bad_parameters_are_a_400(runtime, vllm):
    _, model = vllm
    for bad in ({"n": 0}, {"frequency_penalty": 3}, {"top_logprobs": 50}, {"seed": "x"}):
        response = runtime.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}], **bad}
        )
        assert response.status_code == 400, (bad, response.text)


def test_the_sdk_streams_tool_calls_and_usage(runtime, vllm, admin_api_key):
    standin, model = vllm
    client = sdk(runtime, admin_api_key)
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict] = {}
    finish_reasons, usage = [], None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk" and chunk.model == model
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            finish_reasons.append(choice.finish_reason)
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = call.id or entry["id"]
                entry["name"] += (call.function.name or "") if call.function else ""
                entry["arguments"] += (call.function.arguments or "") if call.function else ""
    assert calls == {0: {"id": "call_abc", "name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert "tool_calls" in finish_reasons
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 7, 18)

    # Without include_usage the client gets no usage chunk (the gateway still asked the backend for it).
    plain = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True))
    assert all(chunk.usage is None for chunk in plain) and standin.bodies[-1]["stream_options"] == {
        "include_usage": True
    }
    assert "".join(c.choices[0].delta.content or "" for c in plain if c.choices).strip() == "vllm says: hi"


def test_the_sdk_gets_ollama_tool_calls_streamed_and_buffered(runtime, ollama_model, admin_api_key):
    _, model = ollama_model
    client = sdk(runtime, admin_api_key)
    messages = [{"role": "user", "content": "weather in Paris?"}]
    stream = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER_TOOL], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    deltas = [call for c in chunks for choice in c.choices for call in choice.delta.tool_calls or []]
    assert [(d.index, d.function.name, json.loads(d.function.arguments)) for d in deltas] == [
        (0, "get_weather", {"city": "Paris"})
    ]
    assert chunks[-1].usage.total_tokens == 11 and any(
        ch.finish_reason == "tool_calls" for c in chunks for ch in c.choices
    )

    completion = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"} and completion.usage.total_tokens == 11


def test_ollama_multi_turn_tool_calls_keep_the_calls_and_their_ids(runtime, ollama_model):
    standin, model = ollama_model
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    response = runtime.post(
        "/v1/chat/completions", json={"model": model, "messages": messages, "tools": [WEATHER_TOOL]}
    )
    assert response.status_code == 200, response.text
    sent = standin.bodies[-1]["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1", "tool_name": "get_weather"}


def test_models_are_retrieved_one_by_one(runtime, vllm, admin_api_key):
    _, model = vllm
    client = sdk(runtime, admin_api_key)
    retrieved = client.models.retrieve(model)
    assert (retrieved.id, retrieved.object, retrieved.owned_by) == (model, "model", "aiplane")
    assert client.models.retrieve(model.upper() + ":latest").id == model  # names route as in chat
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model-anywhere")
