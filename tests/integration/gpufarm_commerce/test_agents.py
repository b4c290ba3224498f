"""MCP over JSON-RPC 2.0, the bounded MCP SSE stream, the unified agent handler and /ws."""

from __future__ import annotations

import time

from aiplane.commerce import serving
from tests.integration.gpufarm_commerce.conftest import upload


def rpc(gpufarm, headers, method, params=None, request_id=1):
    message = {
        "jsonrpc": "2.0",
        "method": method,
        "id": request_id,
        **({"params": params} if params is not None else {}),
    }
    response = gpufarm.post("/api/v1/mcp", json=message, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_initialize_and_list_tools(gpufarm, user):
    init = rpc(
        gpufarm,
        user.headers,
        "initialize",
        {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    )
    assert init["jsonrpc"] == "2.0" and init["id"] == 1
    assert init["result"]["protocolVersion"] == "2025-03-26" and "tools" in init["result"]["capabilities"]
    assert init["result"]["serverInfo"]["name"] == "aiplane-gpufarm"
    notified = gpufarm.post(
        "/api/v1/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=user.headers
    )
    assert notified.status_code == 202 and notified.content == b""
    tools = rpc(gpufarm, user.headers, "tools/list", {}, request_id="abc")
    assert tools["id"] == "abc"
    names = {tool["name"] for tool in tools["result"]["tools"]}
    assert {"list_models", "predict", "get_spending", "check_spending", "get_quota", "get_credits"} <= names
    predict = next(tool for tool in tools["result"]["tools"] if tool["name"] == "predict")
    assert predict["inputSchema"]["type"] == "object" and set(predict["inputSchema"]["required"]) == {
        "model_id",
        "inputs",
    }
    assert rpc(gpufarm, user.headers, "ping")["result"] == {}


def test_tools_call_acts_as_the_caller(gpufarm, user, model_server):
    model_id = upload(gpufarm, user.headers).json()["model_id"]
    listed = rpc(gpufarm, user.headers, "tools/call", {"name": "list_models", "arguments": {}})["result"]
    assert listed["isError"] is False and listed["content"][0]["type"] == "text"
    assert [m["id"] for m in listed["structuredContent"]["models"]] == [model_id]
    serving.mark_serving(model_id, f"{model_server}/ok")
    predicted = rpc(
        gpufarm,
        user.headers,
        "tools/call",
        {"name": "predict", "arguments": {"model_id": model_id, "inputs": {"x": [1]}}},
    )["result"]
    assert predicted["structuredContent"]["outputs"] == {"predictions": [0.85, 0.15]}
    quota = rpc(gpufarm, user.headers, "tools/call", {"name": "get_quota"})["result"]["structuredContent"]
    assert quota["user_id"] == user.id


def test_tool_failures_are_results_with_is_error(gpufarm, make_user):
    alice, bob = make_user(), make_user()
    model_id = upload(gpufarm, alice.headers).json()["model_id"]
    other = rpc(gpufarm, bob.headers, "tools/call", {"name": "get_model", "arguments": {"model_id": model_id}})[
        "result"
    ]
    assert other["isError"] is True and other["structuredContent"]["status"] == 403
    over = rpc(gpufarm, bob.headers, "tools/call", {"name": "check_spending", "arguments": {"estimated_cost": 5000}})[
        "result"
    ]
    assert over["isError"] is True and over["structuredContent"]["code"] == "SPENDING_LIMIT"
    bad = rpc(gpufarm, bob.headers, "tools/call", {"name": "get_model", "arguments": {"nope": 1}})["result"]
    assert bad["isError"] is True and bad["structuredContent"]["status"] == 400


def test_protocol_errors_are_json_rpc_errors(gpufarm, user):
    assert rpc(gpufarm, user.headers, "resources/list")["error"]["code"] == -32601
    unknown = rpc(gpufarm, user.headers, "tools/call", {"name": "rm_rf", "arguments": {}})
    assert unknown["error"]["code"] == -32602
    parse = gpufarm.post(
        "/api/v1/mcp", content=b"{not json", headers={**user.headers, "Content-Type": "application/json"}
    )
    assert parse.status_code == 200 and parse.json()["error"]["code"] == -32700 and parse.json()["id"] is None
    invalid = gpufarm.post("/api/v1/mcp", json={"method": "ping", "id": 3}, headers=user.headers).json()
    assert invalid["error"]["code"] == -32600 and invalid["id"] == 3
    empty = gpufarm.post("/api/v1/mcp", headers=user.headers).json()
    assert empty["error"]["code"] == -32600


def test_batches_answer_each_request(gpufarm, user):
    batch = [
        {"jsonrpc": "2.0", "method": "ping", "id": 1},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "tools/list", "id": 2},
    ]
    answers = gpufarm.post("/api/v1/mcp", json=batch, headers=user.headers).json()
    assert [answer["id"] for answer in answers] == [1, 2]


def test_mcp_requires_credentials(gpufarm):
    response = gpufarm.post("/api/v1/mcp", json={"jsonrpc": "2.0", "method": "ping", "id": 1})
    assert response.status_code == 401 and response.json()["code"] == "AUTH_REQUIRED"


def test_sse_announces_the_endpoint_and_ends_within_its_window(gpufarm, user):
    started = time.monotonic()
    response = gpufarm.get("/api/v1/mcp/sse?window_s=2.5", headers=user.headers)
    assert time.monotonic() - started < 10
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: endpoint\ndata: /api/v1/mcp\n\n")
    assert ": keep-alive" in response.text
    assert gpufarm.get("/api/v1/mcp/sse?window_s=600", headers=user.headers).status_code == 400


def test_the_agent_handler_detects_mcp_and_a2a(gpufarm, user):
    mcp = gpufarm.post("/api/v1/agent", json={"jsonrpc": "2.0", "method": "tools/list", "id": 7}, headers=user.headers)
    assert mcp.status_code == 200 and mcp.json()["id"] == 7 and mcp.json()["result"]["tools"]
    a2a = gpufarm.post(
        "/api/v1/agent",
        headers=user.headers,
        json={
            "protocol": "a2a",
            "from_agent": "agent1",
            "to_agent": "agent2",
            "action": "get_spending",
            "data": {"window": "daily"},
        },
    )
    assert a2a.status_code == 200
    assert a2a.json() == {
        "protocol": "a2a",
        "from_agent": "agent2",
        "to_agent": "agent1",
        "action": "get_spending",
        "status": "completed",
        "data": {
            "window_spent": 0.0,
            "window_limit": 500.0,
            "window_name": "daily",
            "percentage_used": 0.0,
            "violations": [],
        },
    }
    for body in ({"protocol": "smoke"}, {"protocol": "a2a", "action": "format_disk"}, {"hello": 1}):
        refused = gpufarm.post("/api/v1/agent", json=body, headers=user.headers)
        assert refused.status_code == 400 and refused.json()["code"] == "VALIDATION_ERROR", body
    assert gpufarm.post("/api/v1/agent", headers=user.headers).status_code == 400


def test_ws_over_plain_http_is_426(gpufarm, user):
    response = gpufarm.get("/ws", headers=user.headers)
    assert response.status_code == 426 and response.json()["code"] == "UPGRADE_REQUIRED"
    assert response.headers["upgrade"] == "websocket"
