"""/taskchains and /chains store chains and deploy their state machines; the official `openai`
SDK talks to /runtime/openai/{chainID}/v1 (chat, stream, tool calls, models)."""

from __future__ import annotations

import uuid

import boto3
import openai
import pytest
from fastapi.testclient import TestClient

from aiplane.chains import runner

CHAT_TASKS = [
    {
        "id": "chat",
        "handler": "model_execution",
        "execute_config": {"model": "stand-in", "pass_clients_tools": True},
        "transition": {"branches": [{"operator": "default", "goto": "reply"}]},
    },
    {
        "id": "reply",
        "handler": "convert_to_openai_chat_response",
        "transition": {"branches": [{"operator": "default", "goto": "end"}]},
    },
]


@pytest.fixture
def headers(admin_api_key):
    return {"X-API-Key": admin_api_key}


@pytest.fixture
def runtime(family_clients):
    return family_clients["runtime"]


def test_taskchain_crud_deploys_and_updates_the_state_machine(runtime, headers, llm):
    chain_id = f"chain-{uuid.uuid4().hex[:8]}"
    chain = {"id": chain_id, "description": "v1", "tasks": [{"id": "a", "handler": "noop"}]}
    created = runtime.post("/taskchains", json=chain, headers=headers)
    assert created.status_code == 201 and created.json()["id"] == chain_id
    assert runtime.post("/taskchains", json=chain, headers=headers).status_code == 409
    assert runtime.get(f"/taskchains/{chain_id}", headers=headers).json()["description"] == "v1"
    listed = runtime.get("/taskchains", params={"limit": "1000"}, headers=headers).json()
    assert chain_id in [item["id"] for item in listed]

    arn = boto3.client("stepfunctions").describe_state_machine(
        stateMachineArn=runner._state_machine_arn(runner.state_machine_name(runner.stored_chain_key(chain_id)))
    )
    assert arn["type"] == "EXPRESS" and '"Task:a"' in arn["definition"]

    updated = runtime.put(
        f"/taskchains/{chain_id}",
        json={**chain, "description": "v2", "tasks": [{"id": "b", "handler": "noop"}]},
        headers=headers,
    )
    assert updated.status_code == 200 and updated.json()["description"] == "v2"
    definition = boto3.client("stepfunctions").describe_state_machine(stateMachineArn=arn["stateMachineArn"])[
        "definition"
    ]
    assert '"Task:b"' in definition
    assert runtime.put(f"/taskchains/{chain_id}", json={**chain, "id": "other"}, headers=headers).status_code == 400
    assert runtime.delete(f"/taskchains/{chain_id}", headers=headers).json() == f"task chain {chain_id} deleted"
    assert runtime.get(f"/taskchains/{chain_id}", headers=headers).status_code == 404
    assert runtime.get("/taskchains", params={"cursor": "yesterday"}, headers=headers).status_code == 400


def test_legacy_chains_set_creates_then_replaces(runtime, headers):
    chain = {"id": f"legacy-{uuid.uuid4().hex[:8]}", "tasks": [{"id": "a", "handler": "noop"}]}
    assert runtime.post("/chains", json=chain, headers=headers).status_code == 201
    again = runtime.post("/chains", json={**chain, "description": "again"}, headers=headers)
    assert again.status_code == 201 and again.json()["description"] == "again"
    assert (
        runtime.post("/chains", json={"id": "x", "tasks": [{"id": "a", "handler": "bad"}]}, headers=headers).json()[
            "error"
        ]["param"]
        == "tasks[0].handler"
    )


@pytest.fixture
def openai_client(admin_api_key, runtime, headers, llm):
    from aiplane_local.server import build_root_app

    chain_id = f"oa-{uuid.uuid4().hex[:8]}"
    assert runtime.post("/taskchains", json={"id": chain_id, "tasks": CHAT_TASKS}, headers=headers).status_code == 201
    http = TestClient(build_root_app())
    return openai.OpenAI(
        base_url=f"http://testserver/runtime/openai/{chain_id}/v1",
        api_key="unused",
        default_headers=headers,
        http_client=http,
        max_retries=0,
    )


def test_openai_sdk_chat(openai_client, llm):
    llm.reply = lambda text, body: f"Hello {text}"
    completion = openai_client.chat.completions.create(model="stand-in", messages=[{"role": "user", "content": "Ada"}])
    assert completion.choices[0].message.content == "Hello Ada"
    assert completion.choices[0].finish_reason == "stop" and completion.object == "chat.completion"
    assert completion.usage.total_tokens == 10


def test_openai_sdk_stream(openai_client, llm):
    llm.reply = lambda text, body: "a fairly long answer " * 10
    stream = openai_client.chat.completions.create(
        model="stand-in", messages=[{"role": "user", "content": "go"}], stream=True
    )
    chunks = list(stream)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "a fairly long answer " * 10
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_sdk_client_tools_come_back_as_tool_calls(openai_client, llm):
    def reply(text, body):
        assert body["tools"][0]["function"]["name"] == "get_weather"
        return {
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        }

    llm.reply = reply
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    completion = openai_client.chat.completions.create(
        model="stand-in", messages=[{"role": "user", "content": "weather?"}], tools=tools
    )
    call = completion.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_9", "get_weather", '{"city": "Oslo"}')
    assert completion.choices[0].finish_reason == "tool_calls"


def test_openai_sdk_models(openai_client):
    assert [model.id for model in openai_client.models.list()] == ["stand-in"]


def test_raw_sse_ends_with_done_and_unknown_chain_is_404(runtime, headers, openai_client, llm):
    chain_path = str(openai_client.base_url).split("/runtime")[1].rstrip("/")
    response = runtime.post(
        f"{chain_path}/chat/completions",
        headers=headers,
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]" and '"finish_reason": "stop"' in events[-2]
    missing = runtime.post(
        "/openai/no-such-chain/v1/chat/completions",
        headers=headers,
        json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_stack_trace_on_request(runtime, headers, openai_client, llm):
    chain_path = str(openai_client.base_url).split("/runtime")[1].rstrip("/")
    response = runtime.post(
        f"{chain_path}/chat/completions",
        params={"stackTrace": "true"},
        headers=headers,
        json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
    )
    assert [unit["taskID"] for unit in response.json()["stackTrace"]] == ["chat", "reply"]
    plain = runtime.post(
        f"{chain_path}/chat/completions",
        headers=headers,
        json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
    )
    assert "stackTrace" not in plain.json() and plain.json()["model"] == "stand-in"  # the chain's model wins
