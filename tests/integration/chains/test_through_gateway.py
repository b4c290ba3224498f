"""Task chains reach models through the runtime's own gateway by default: the chain's model is
routed to a backend registered with /backends and sharing a group with the model."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.chains.test_tasks_route import end, run


@pytest.fixture
def routed_model(family_clients, admin_api_key, stand_in_llm_server, set_setting):
    """A vLLM backend (the stand-in) and a model in one group; chains use no external URL."""
    set_setting("AIPLANE_CHAINS_LLM_BASE_URL", None)
    stand_in_llm_server.requests.clear()
    client = family_clients["runtime"]
    headers = {"X-API-Key": admin_api_key}
    name = f"chainmodel{uuid.uuid4().hex[:8]}"
    backend = client.post(
        "/backends", json={"name": f"b{name}", "baseUrl": stand_in_llm_server.url, "type": "vllm"}, headers=headers
    )
    group = client.post("/groups", json={"name": f"g{name}", "purposeType": "Internal Tasks"}, headers=headers)
    model = client.post(
        "/models",
        json={
            "model": name,
            "canChat": True,
            "canPrompt": True,
            "canStream": True,
            "canEmbed": False,
            "contextLength": 4096,
        },
        headers=headers,
    )
    assert backend.status_code == group.status_code == model.status_code == 201
    group_id = group.json()["id"]
    assert (
        client.post(f"/backend-affinity/{group_id}/backends/{backend.json()['id']}", headers=headers).status_code == 201
    )
    assert client.post(f"/model-affinity/{group_id}/models/{model.json()['id']}", headers=headers).status_code == 200
    return name


def test_prompt_task_is_routed_to_the_grouped_backend(runtime, routed_model, stand_in_llm_server):
    stand_in_llm_server.reply = lambda text, body: f"routed: {text}"
    tasks = [{"id": "ask", "handler": "raw_string", "execute_config": {"model": routed_model}, "transition": end()}]
    body = run(runtime, tasks, "hello").json()
    assert body["output"] == "routed: hello"
    assert stand_in_llm_server.requests[-1][1] == "/v1/chat/completions"


def test_tool_calls_travel_through_the_gateway(runtime, routed_model, stand_in_llm_server):
    def reply(text, body):
        if body["messages"][-1]["role"] == "tool":
            return "done: " + body["messages"][-1]["content"]
        assert body["tools"][0]["function"]["name"] == "echo"
        return {
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "echo", "arguments": '{"message": "ping"}'}}
            ],
        }

    stand_in_llm_server.reply = reply
    config = {"model": routed_model, "hooks": ["echo"]}
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
        {"id": "tools", "handler": "execute_tool_calls", "execute_config": config, "transition": end("chat")},
    ]
    body = run(runtime, tasks, {"messages": [{"role": "user", "content": "hi"}]}, "chat_history").json()
    assert [(unit["taskID"], unit["transition"]) for unit in body["state"]] == [
        ("chat", "tool-call"),
        ("tools", "tools_executed"),
        ("chat", "executed"),
    ]
    assert body["output"]["messages"][-1]["content"] == 'done: {"message": "ping"}'
