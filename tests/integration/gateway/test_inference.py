"""Routed inference against stand-in Ollama and OpenAI-compatible servers: chat (plain and
streamed), the official openai SDK, /execute, /embed, pool isolation and failover."""

from __future__ import annotations

import json

import openai
import pytest

from aiplane.gateway import registry, routing
from tests.integration.gateway.standins import OllamaStandIn, OpenAIStandIn


@pytest.fixture
def ollama():
    standin = OllamaStandIn("ollama-a")
    yield standin
    standin.stop()


@pytest.fixture
def routed(gateway, ollama, unique):
    """One chat model and one embedding model served by the stand-in Ollama through one group."""
    chat_model, embed_model = unique("llama") + ":latest", unique("embed")
    backend_id = gateway.backend(unique("b"), ollama.url)
    group_id = gateway.group(unique("g"))
    chat_id = gateway.model(chat_model)
    embed_id = gateway.model(embed_model, canChat=False, canPrompt=False, canStream=False, canEmbed=True)
    gateway.join(group_id, backends=(backend_id,), models=(chat_id, embed_id))
    return {"chat": chat_model, "embed": embed_model, "backend": backend_id, "group": group_id}


def sdk(runtime, admin_api_key) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{runtime.base_url}/v1",
        api_key=admin_api_key,
        http_client=runtime,
        default_headers={"X-API-Key": admin_api_key},
        max_retries=0,
    )


def test_chat_completion_is_routed_to_the_group_backend(runtime, routed, ollama):
    response = runtime.post(
        "/v1/chat/completions", json={"model": routed["chat"], "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == routed["chat"]
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "ollama-a says: hi"}
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert ("POST", "/api/chat") in ollama.requests


def test_names_are_normalised_when_routing(runtime, routed):
    org_and_tag = "Library/" + routed["chat"].split(":")[0].upper() + ":7b"
    response = runtime.post(
        "/v1/chat/completions", json={"model": org_and_tag, "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 200, response.text


def test_streamed_chat_is_server_sent_chunks_ending_with_done(runtime, routed):
    response = runtime.post(
        "/v1/chat/completions",
        json={"model": routed["chat"], "stream": True, "messages": [{"role": "user", "content": "stream me"}]},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: ") :] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks).strip() == "ollama-a says: stream me"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_the_openai_sdk_lists_chats_streams_and_embeds(runtime, routed, admin_api_key):
    client = sdk(runtime, admin_api_key)
    assert routed["chat"] in [model.id for model in client.models.list()]

    completion = client.chat.completions.create(model=routed["chat"], messages=[{"role": "user", "content": "sdk"}])
    assert completion.choices[0].message.content == "ollama-a says: sdk"

    stream = client.chat.completions.create(
        model=routed["chat"], messages=[{"role": "user", "content": "sdk stream"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.strip() == "ollama-a says: sdk stream"

    vectors = client.embeddings.create(model=routed["embed"], input=["abc", "de"])
    assert [item.embedding for item in vectors.data] == [[3.0, 0.5, 0.25], [2.0, 0.5, 0.25]]


def test_execute_and_embed_use_the_default_models(runtime, routed, set_setting):
    set_setting("AIPLANE_DEFAULT_TASK_MODEL", routed["chat"])
    set_setting("AIPLANE_DEFAULT_EMBED_MODEL", routed["embed"])
    assert runtime.get("/defaultmodel").json() == {"modelName": routed["chat"]}
    executed = runtime.post("/execute", json={"prompt": "2+2?", "model_name": "", "model_provider": ""})
    assert (
        executed.status_code == 200
        and executed.json()["response"] == "ollama-a generated: 2+2?"
        and executed.json()["id"]
    )
    assert runtime.post("/embed", json={"text": "four"}).json() == {"vector": [4.0, 0.5, 0.25]}
    assert runtime.post("/embed", json={}).status_code == 400


def test_capability_and_context_length_must_fit(runtime, routed, gateway, unique):
    embed_only = runtime.post(
        "/v1/chat/completions", json={"model": routed["embed"], "messages": [{"role": "user", "content": "x"}]}
    )
    assert embed_only.status_code == 400 and embed_only.json()["error"]["code"] == "capability_mismatch"
    tiny = unique("tiny")
    gateway.join(routed["group"], models=(gateway.model(tiny, contextLength=10),))
    too_long = runtime.post(
        "/v1/chat/completions", json={"model": tiny, "messages": [{"role": "user", "content": "x" * 400}]}
    )
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "context_length_exceeded"
    unknown = runtime.post(
        "/v1/chat/completions", json={"model": unique("nope"), "messages": [{"role": "user", "content": "x"}]}
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert runtime.post("/v1/chat/completions", json={"model": routed["chat"], "messages": []}).status_code == 400


def test_a_model_outside_every_shared_pool_is_never_routed(runtime, gateway, ollama, unique):
    other = OllamaStandIn("ollama-other")
    try:
        served_group, lonely_group = gateway.group(unique("served")), gateway.group(unique("lonely"))
        backend_id = gateway.backend(unique("b"), other.url)
        gateway.join(served_group, backends=(backend_id,), models=(gateway.model(unique("served")),))
        isolated = unique("isolated")
        gateway.join(lonely_group, models=(gateway.model(isolated),))
        ungrouped = unique("ungrouped")
        gateway.model(ungrouped)
        for model in (isolated, ungrouped):
            response = runtime.post(
                "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
            )
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "no_backend_available"
        assert other.chat_calls() == 0
    finally:
        other.stop()


def test_failover_to_the_next_backend_when_one_answers_500(runtime, gateway, gateway_settings, unique):
    gateway_settings(gateway_allowed_fails=1)
    broken, healthy = OllamaStandIn("broken"), OllamaStandIn("healthy")
    try:
        broken.failing = True
        group_id = gateway.group(unique("g"))
        first = gateway.backend(unique("first"), broken.url)
        second = gateway.backend(unique("second"), healthy.url, weight=0)  # tried only after the first
        model = unique("m")
        gateway.join(group_id, backends=(first, second), models=(gateway.model(model),))
        for _ in range(3):
            response = runtime.post(
                "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
            )
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == "healthy says: x"
        assert broken.chat_calls() == 1  # then it cooled down
        assert routing.cooling_down(first)

        healthy.failing = True
        failed = runtime.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
        )
        assert failed.status_code == 502 and failed.json()["error"]["type"] == "server_error"
    finally:
        broken.stop()
        healthy.stop()


def test_failover_on_connection_error_when_streaming(runtime, gateway, unique):
    healthy = OllamaStandIn("healthy")
    try:
        group_id = gateway.group(unique("g"))
        dead = gateway.backend(unique("dead"), "http://127.0.0.1:9")
        alive = gateway.backend(unique("alive"), healthy.url)
        model = unique("m")
        gateway.join(group_id, backends=(dead, alive), models=(gateway.model(model),))
        response = runtime.post(
            "/v1/chat/completions",
            json={"model": model, "stream": True, "messages": [{"role": "user", "content": "y"}]},
        )
        assert response.status_code == 200 and response.text.rstrip().endswith("data: [DONE]")
        assert "healthy" in response.text
    finally:
        healthy.stop()


def test_backends_in_error_are_skipped(runtime, gateway, unique):
    first, second = OllamaStandIn("first"), OllamaStandIn("second")
    try:
        group_id = gateway.group(unique("g"))
        errored = gateway.backend(unique("errored"), first.url)
        fine = gateway.backend(unique("fine"), second.url)
        model = unique("m")
        gateway.join(group_id, backends=(errored, fine), models=(gateway.model(model),))
        registry.write_backend_state(errored, error="unreachable", models=[], pulled_models=[])
        registry.write_backend_state(fine, error=None, models=[model], pulled_models=[])
        response = runtime.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "z"}]}
        )
        assert response.json()["choices"][0]["message"]["content"] == "second says: z"
        assert first.chat_calls() == 0
    finally:
        first.stop()
        second.stop()


def test_openai_backends_use_the_provider_key(runtime, gateway, unique):
    key = "sk-" + unique("k")
    upstream = OpenAIStandIn("openai-up", models=["gpt-x"], api_key=key)
    try:
        assert runtime.post("/providers/openai/configure", json={"apiKey": key, "upsert": True}).status_code == 200
        group_id = gateway.group(unique("g"))
        backend_id = gateway.backend(unique("oa"), upstream.url + "/v1", "openai")
        model_id = runtime.get("/models", params={"limit": 1000}).json()
        existing = next((m["id"] for m in model_id if m["model"] == "gpt-x"), None) or gateway.model("gpt-x")
        gateway.join(group_id, backends=(backend_id,), models=(existing,))
        response = runtime.post(
            "/v1/chat/completions", json={"model": "gpt-x", "messages": [{"role": "user", "content": "k"}]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "openai-up says: k"
        streamed = runtime.post(
            "/v1/chat/completions",
            json={"model": "gpt-x", "stream": True, "messages": [{"role": "user", "content": "s"}]},
        )
        assert "openai-up" in streamed.text and streamed.text.rstrip().endswith("data: [DONE]")
    finally:
        runtime.delete("/providers/openai/config")
        upstream.stop()


def test_gemini_backends_speak_its_rest_api_with_the_provider_key(runtime, gateway, unique):
    from tests.integration.gateway.standins import GeminiStandIn

    key = "AIza" + unique("k")
    model = unique("gemini")
    upstream = GeminiStandIn("gemini-up", models=[model], api_key=key)
    try:
        assert runtime.post("/providers/gemini/configure", json={"apiKey": key, "upsert": True}).status_code == 200
        group_id = gateway.group(unique("g"))
        backend_id = gateway.backend(unique("gem"), upstream.url, "gemini")
        gateway.join(group_id, backends=(backend_id,), models=(gateway.model(model, canEmbed=True),))
        from aiplane.gateway import sync

        assert sync.sync_one(backend_id) is None
        assert runtime.get(f"/backends/{backend_id}").json()["models"] == [model]

        messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "g"}]
        response = runtime.post("/v1/chat/completions", json={"model": model, "messages": messages})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "gemini-up says: g"
        streamed = runtime.post("/v1/chat/completions", json={"model": model, "stream": True, "messages": messages})
        assert "gemini-up" in streamed.text and streamed.text.rstrip().endswith("data: [DONE]")
        embedded = runtime.post("/v1/embeddings", json={"model": model, "input": "four"})
        assert embedded.json()["data"][0]["embedding"] == [4.0, 1.0]
    finally:
        runtime.delete("/providers/gemini/config")
        upstream.stop()
