"""Chains stream for real: the steps before the final model step run on the state machine, and that
step's tokens reach the client as the backend sends them, over HTTP through the local server.
The stand-in backend sends one word every `token_delay_s`."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import openai
import pytest

from tests.integration.chains.test_through_gateway import routed_model  # noqa: F401 (a fixture)

TOKEN_DELAY_S = 0.3
REPLY = "one two three four five six"  # six words: the step lasts five delays after its first token


@pytest.fixture(scope="module")
def server(local_stack):
    from aiplane_local.server import BackgroundServer

    started = BackgroundServer()
    yield started.base_url
    started.stop()


@pytest.fixture
def slow_llm(llm):
    llm.token_delay_s = TOKEN_DELAY_S
    yield llm
    llm.token_delay_s = 0.0


def store_chain(runtime, tasks) -> str:
    chain_id = f"stream-{uuid.uuid4().hex[:8]}"
    response = runtime.post("/taskchains", json={"id": chain_id, "tasks": tasks})
    assert response.status_code == 201, response.text
    return chain_id


def default(goto="end"):
    return {"branches": [{"operator": "default", "goto": goto}]}


def timed_stream(server, admin_api_key, chain_id, **body):
    """(seconds from the request to each SSE event, the events' JSON, status) of one streamed request."""
    request = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "count"}], **body}
    started, events = time.monotonic(), []
    with httpx.stream(
        "POST",
        f"{server}/runtime/openai/{chain_id}/v1/chat/completions",
        json=request,
        headers={"X-API-Key": admin_api_key},
        timeout=60,
    ) as response:
        if response.status_code != 200:
            return [], [response.read() and response.json()], response.status_code
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append((time.monotonic() - started, line[6:]))
    return [at for at, _ in events], [data if data == "[DONE]" else json.loads(data) for _, data in events], 200


def contents(events):
    return [
        choice["delta"].get("content")
        for event in events
        if isinstance(event, dict)
        for choice in event.get("choices", [])
        if choice["delta"].get("content")
    ]


PRE_STEP = {"id": "prepare", "handler": "noop", "transition": default("chat")}  # a step on the state machine first
CHAT = {
    "id": "chat",
    "handler": "model_execution",
    "execute_config": {"model": "stand-in"},
    "transition": default("reply"),
}
REPLY_STEP = {"id": "reply", "handler": "convert_to_openai_chat_response", "transition": default()}


def assert_streamed_live(times, events):
    token_times = [
        at
        for at, event in zip(times, events, strict=True)
        if isinstance(event, dict) and any(c["delta"].get("content") for c in event.get("choices", []))
    ]
    assert "".join(contents(events)) == REPLY and len(token_times) == 6
    # the first token arrived while the step still had five delays to go
    assert token_times[0] < token_times[-1] - 4 * TOKEN_DELAY_S
    assert events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "stop"


def test_a_chains_final_step_streams_its_first_token_before_the_step_ends(runtime, server, admin_api_key, slow_llm):
    slow_llm.reply = lambda text, body: REPLY
    chain_id = store_chain(runtime, [PRE_STEP, CHAT, REPLY_STEP])
    times, events, status = timed_stream(server, admin_api_key, chain_id)
    assert status == 200
    assert_streamed_live(times, events)
    assert slow_llm.requests[-1][2]["stream"] is True
    trace = runtime.post(
        f"/openai/{chain_id}/v1/chat/completions",
        params={"stackTrace": "true"},
        json={"model": "m", "messages": [{"role": "user", "content": "count"}]},
    ).json()["stackTrace"]
    assert [unit["taskID"] for unit in trace] == ["prepare", "chat", "reply"]  # the same steps, not streamed


def test_through_the_gateway_too(runtime, server, admin_api_key, routed_model, stand_in_llm_server):  # noqa: F811
    stand_in_llm_server.reply = lambda text, body: REPLY
    stand_in_llm_server.token_delay_s = TOKEN_DELAY_S
    try:
        chain_id = store_chain(runtime, [PRE_STEP, {**CHAT, "execute_config": {"model": routed_model}}, REPLY_STEP])
        times, events, status = timed_stream(server, admin_api_key, chain_id)
    finally:
        stand_in_llm_server.token_delay_s = 0.0
    assert status == 200
    assert_streamed_live(times, events)


def test_a_tool_loop_streams_the_final_reply_and_keeps_the_chains_tool_calls_to_itself(
    runtime, server, admin_api_key, llm
):
    def reply(text, body):
        if body["messages"][-1]["role"] == "tool":
            return "the echo said " + body["messages"][-1]["content"]
        return {
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "echo", "arguments": '{"message": "ping"}'}}
            ],
        }

    llm.reply = reply
    config = {"model": "stand-in", "hooks": ["echo"]}
    chain_id = store_chain(
        runtime,
        [
            {
                "id": "chat",
                "handler": "model_execution",
                "execute_config": config,
                "transition": {
                    "branches": [
                        {"operator": "equals", "when": "tool-call", "goto": "tools"},
                        {"operator": "default", "goto": "end"},
                    ]
                },
            },
            {"id": "tools", "handler": "execute_tool_calls", "execute_config": config, "transition": default("chat")},
        ],
    )
    _, events, status = timed_stream(server, admin_api_key, chain_id, stream_options={"include_usage": True})
    assert status == 200
    assert "".join(contents(events)) == 'the echo said {"message": "ping"}'
    assert not any(
        choice["delta"].get("tool_calls") for event in events if isinstance(event, dict) for choice in event["choices"]
    )
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["total_tokens"] == 10


def test_client_tools_come_back_as_streamed_tool_calls(runtime, server, admin_api_key, llm):
    llm.reply = lambda text, body: {
        "content": None,
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
        ],
    }
    chain_id = store_chain(
        runtime, [{**CHAT, "execute_config": {"model": "stand-in", "pass_clients_tools": True}}, REPLY_STEP]
    )
    client = openai.OpenAI(
        base_url=f"{server}/runtime/openai/{chain_id}/v1",
        api_key="unused",
        default_headers={"X-API-Key": runtime.headers["X-API-Key"]},
        max_retries=0,
    )
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
    ]
    chunks = list(
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "weather?"}], tools=tools, stream=True
        )
    )
    (call,) = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    assert (call.id, call.function.name, call.function.arguments) == ("call_9", "get_weather", '{"city": "Oslo"}')
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_only_the_final_model_step_streams_and_later_steps_still_apply(runtime, server, admin_api_key, llm):
    def reply(text, body):
        polishing = any(m["role"] == "system" and m["content"] == "polish" for m in body["messages"])
        return "polished reply" if polishing else "rough draft"

    llm.reply = reply
    draft = {**CHAT, "id": "draft", "transition": default("polish")}
    polish = {**CHAT, "id": "polish", "system_instruction": "polish", "transition": default("reply")}
    _, events, status = timed_stream(server, admin_api_key, store_chain(runtime, [draft, polish, REPLY_STEP]))
    assert status == 200 and contents(events) == ["polished ", "reply"]  # the draft's tokens never reach the client
    # a step after the model step that is not pass-through (here: the chain's own tool runner) keeps the model
    # step in the state machine; the answer is sent whole when the run ends
    tools = {"id": "tools", "handler": "execute_tool_calls", "transition": default()}
    _, events, status = timed_stream(
        server, admin_api_key, store_chain(runtime, [{**CHAT, "transition": default("tools")}, tools])
    )
    assert status == 200 and contents(events) == ["rough draft"] and events[-2]["choices"][0]["finish_reason"] == "stop"


def test_a_failure_before_the_first_token_is_an_error_status(runtime, server, admin_api_key, llm, set_setting):
    chain_id = store_chain(runtime, [CHAT, REPLY_STEP])
    set_setting("AIPLANE_CHAINS_LLM_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    _, (body,), status = timed_stream(server, admin_api_key, chain_id)
    assert status == 502 and body["error"]["message"].startswith("the LLM backend is unreachable")
