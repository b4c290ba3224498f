"""Remote hooks (CRUD, both protocols on a loopback server, timeoutMs), /supported, /hooks/schemas,
and chats whose turns run the chat chain."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.integration.chains.stand_ins import StandInServer

OPENAPI = {
    "openapi": "3.0.0",
    "info": {"title": "tools", "version": "1"},
    "paths": {
        "/greet": {
            "post": {
                "operationId": "greet",
                "summary": "Greets someone",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}},
                                "required": ["name"],
                            }
                        }
                    }
                },
            }
        },
    },
}


def hook_server_responder(method, path, body):
    if path == "/openapi.json":
        return 200, OPENAPI
    if path == "/greet":
        return 200, {"greeting": f"hello {body.get('name')}", "token": body.get("access_token")}
    if path == "/slow":
        time.sleep(2)
        return 200, {}
    # the v0.0.52 protocol
    return 200, {
        "output": f"legacy got {body['input']} with {body['args']}",
        "dataType": "string",
        "transition": "done",
    }


@pytest.fixture(scope="module")
def hook_server():
    server = StandInServer(hook_server_responder)
    yield server
    server.stop()


@pytest.fixture
def headers(admin_api_key):
    return {"X-API-Key": admin_api_key}


@pytest.fixture
def runtime(family_clients):
    return family_clients["runtime"]


def create_hook(runtime, headers, **fields):
    body = {"name": f"h-{uuid.uuid4().hex[:8]}", "timeoutMs": 2000, **fields}
    response = runtime.post("/hooks/remote", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_remote_hook_crud_and_by_name(runtime, headers, hook_server):
    hook = create_hook(runtime, headers, endpointUrl=hook_server.url)
    assert runtime.get(f"/hooks/remote/{hook['id']}", headers=headers).json()["name"] == hook["name"]
    assert runtime.get(f"/hooks/remote/by-name/{hook['name']}", headers=headers).json()["id"] == hook["id"]
    assert (
        runtime.post(
            "/hooks/remote", json={"name": hook["name"], "endpointUrl": hook_server.url}, headers=headers
        ).status_code
        == 409
    )
    renamed = runtime.put(
        f"/hooks/remote/{hook['id']}",
        json={"id": "ignored", "name": hook["name"] + "-x", "endpointUrl": hook_server.url},
        headers=headers,
    )
    assert renamed.status_code == 200 and renamed.json()["id"] == hook["id"]
    assert runtime.get(f"/hooks/remote/by-name/{hook['name']}", headers=headers).status_code == 404
    assert hook["name"] + "-x" in runtime.get("/supported", headers=headers).json()
    assert {"echo", "print", "webhook"} <= set(runtime.get("/supported", headers=headers).json())
    assert runtime.delete(f"/hooks/remote/{hook['id']}", headers=headers).json() == "deleted"
    assert runtime.get(f"/hooks/remote/{hook['id']}", headers=headers).status_code == 404
    assert (
        runtime.post("/hooks/remote", json={"name": "bad", "endpointUrl": "ftp://x"}, headers=headers).status_code
        == 400
    )


def run_hook_chain(runtime, headers, hook):
    return runtime.post(
        "/tasks",
        headers=headers,
        json={
            "input": "ping",
            "inputType": "string",
            "chain": {
                "id": "h",
                "tasks": [
                    {
                        "id": "call",
                        "handler": "hook",
                        "hook": hook,
                        "transition": {"branches": [{"operator": "default", "goto": "end"}]},
                    }
                ],
            },
        },
    )


def test_hook_in_the_v0_0_52_protocol(runtime, headers, hook_server):
    hook = create_hook(runtime, headers, endpointUrl=hook_server.url + "/legacy")
    body = run_hook_chain(runtime, headers, {"name": hook["name"], "args": {"k": "v"}}).json()
    assert body["output"] == "legacy got ping with {'k': 'v'}"
    sent = [request for request in hook_server.requests if request[1] == "/legacy"][-1][2]
    assert set(sent) == {"startingTime", "input", "dataType", "transition", "args"} and sent["dataType"] == "string"


def test_hook_in_the_openapi_tools_protocol_with_injected_property(runtime, headers, hook_server):
    hook = create_hook(
        runtime,
        headers,
        endpointUrl=hook_server.url,
        properties={"in": "body", "name": "access_token", "value": "s3cret"},
    )
    body = run_hook_chain(
        runtime, headers, {"name": hook["name"], "tool_name": "greet", "args": {"name": "{{.input}}"}}
    ).json()
    assert body["output"] == {"greeting": "hello ping", "token": "s3cret"}
    schemas = runtime.get("/hooks/schemas", headers=headers).json()
    assert schemas[hook["name"]]["paths"]["/greet"]["post"]["operationId"] == "greet" and "echo" in schemas


def test_model_uses_remote_openapi_tools(runtime, headers, hook_server, llm):
    hook = create_hook(runtime, headers, endpointUrl=hook_server.url)
    llm.reply = lambda text, body: (
        ("done: " + body["messages"][-1]["content"])
        if body["messages"][-1]["role"] == "tool"
        else {
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "greet", "arguments": '{"name": "Bo"}'}}
            ],
        }
    )
    config = {"model": "stand-in", "hooks": [hook["name"]]}
    tasks = [
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
        {
            "id": "tools",
            "handler": "execute_tool_calls",
            "execute_config": config,
            "transition": {"branches": [{"operator": "default", "goto": "chat"}]},
        },
    ]
    body = runtime.post(
        "/tasks", headers=headers, json={"input": "hi", "inputType": "string", "chain": {"id": "m", "tasks": tasks}}
    ).json()
    assert body["output"]["messages"][-1]["content"] == 'done: {"greeting": "hello Bo", "token": null}'


def test_hook_timeout_ms_is_enforced(runtime, headers, hook_server):
    hook = create_hook(runtime, headers, endpointUrl=hook_server.url + "/slow", timeoutMs=200)
    started = time.monotonic()
    response = run_hook_chain(runtime, headers, {"name": hook["name"]})
    assert response.status_code == 504 and time.monotonic() - started < 1.9


def test_chat_turns_keep_history(runtime, headers, llm):
    llm.reply = lambda text, body: f"reply {len(body['messages'])}: {text}"
    chat_id = runtime.post("/chats", json={"subject": "s"}, headers=headers).json()["id"]
    assert runtime.post(f"/chats/{chat_id}/instruction", json={"instruction": "be nice"}, headers=headers).json() == {
        "resp": "instruction added"
    }
    first = runtime.post(
        f"/chats/{chat_id}/chat", json={"message": "one", "models": ["stand-in"]}, headers=headers
    ).json()
    assert (
        first["response"] == "reply 2: one" and first["inputTokenCount"] == 7 and first["state"][0]["taskID"] == "chat"
    )
    second = runtime.post(f"/chats/{chat_id}/chat", json={"message": "two"}, headers=headers).json()
    assert second["response"] == "reply 4: two"
    history = runtime.get(f"/chats/{chat_id}", headers=headers).json()
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user", "assistant"]
    assert chat_id in [chat["id"] for chat in runtime.get("/chats", headers=headers).json()]
    assert runtime.post("/chats/nope/chat", json={"message": "x"}, headers=headers).status_code == 404
    assert runtime.post(f"/chats/{chat_id}/chat", json={}, headers=headers).status_code == 400
    llm.failures_left = 3
    assert runtime.post(f"/chats/{chat_id}/chat", json={"message": "x"}, headers=headers).status_code == 502
