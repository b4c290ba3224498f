"""Agent protocols over the commerce operations: MCP (JSON-RPC 2.0) and a simple A2A message form.

Both expose the same small tool set, always acting as the calling principal. MCP follows the
2025-03-26 specification's request/response methods (`initialize`, `ping`, `tools/list`,
`tools/call`); tool failures come back as results with `isError`, protocol failures as JSON-RPC
errors (answered with HTTP 200, as JSON-RPC over HTTP does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from aiplane.commerce import billing, guardrails, quota, serving, views
from aiplane.commerce.windows import to_cents
from aiplane.errors import AiplaneError, ValidationError
from aiplane.identity.principal import Principal
from aiplane.version import VERSION

PROTOCOL_VERSION = "2025-03-26"
SERVER_INFO = {"name": "aiplane-gpufarm", "version": VERSION}

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArguments(_Arguments):
    pass


class ModelArguments(_Arguments):
    model_id: str = Field(description="the model's id")


class PredictArguments(_Arguments):
    model_id: str = Field(description="the model's id")
    inputs: dict[str, Any] | list[Any] = Field(description="the model's inputs")
    parameters: dict[str, Any] | None = Field(default=None, description="inference parameters")


class SpendingArguments(_Arguments):
    window: str | None = Field(default=None, description="hourly, daily or monthly (default monthly)")


class CheckArguments(_Arguments):
    estimated_cost: float = Field(description="the planned spend in USD")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: type[_Arguments]
    run: Callable[[Principal, Any], Any]

    def view(self) -> dict[str, Any]:
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        return {"name": self.name, "description": self.description, "inputSchema": schema}


def _list_models(principal: Principal, _: NoArguments) -> Any:
    return {"models": [views.model_summary(m) for m in serving.list_models(principal.id, 100, None)]}


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("list_models", "List your uploaded models", NoArguments, _list_models),
        Tool(
            "get_model",
            "Details of one of your models",
            ModelArguments,
            lambda p, a: views.model_detail(serving.get_model(p, a.model_id)),
        ),
        Tool(
            "predict",
            "Run inference on one of your served models",
            PredictArguments,
            lambda p, a: serving.predict(p, a.model_id, a.inputs, a.parameters),
        ),
        Tool(
            "model_metrics",
            "Latency and error metrics of one of your models",
            ModelArguments,
            lambda p, a: views.metrics_view(*serving.latencies(p, a.model_id)),
        ),
        Tool("list_model_formats", "Model formats the farm accepts", NoArguments, lambda p, a: views.formats_view()),
        Tool(
            "get_spending",
            "Your spending in a guardrail window",
            SpendingArguments,
            lambda p, a: views.spending_view(guardrails.shown_window(a.window), guardrails.spending(p.id)),
        ),
        Tool(
            "check_spending",
            "Whether a planned spend fits your spending limits",
            CheckArguments,
            lambda p, a: guardrails.check(p.id, to_cents(a.estimated_cost, param="estimated_cost", allow_zero=True)),
        ),
        Tool("get_credits", "Your credit balance", NoArguments, lambda p, a: {"credits": billing.credits_of(p.id)}),
        Tool(
            "get_quota", "Your model storage quota", NoArguments, lambda p, a: views.quota_view(p.id, quota.usage(p.id))
        ),
    )
}


def run_tool(principal: Principal, name: str, arguments: Any) -> Any:
    """Run a tool; raises ValidationError for an unknown tool or bad arguments, and the domain
    errors of the operation itself."""
    tool = TOOLS.get(name) if isinstance(name, str) else None
    if tool is None:
        raise ValidationError(f"unknown tool {name!r}; tools: {', '.join(TOOLS)}", param="name")
    try:
        parsed = tool.arguments.model_validate(arguments if arguments is not None else {})
    except PydanticValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "arguments"
        raise ValidationError(f"{field}: {first['msg']}", param=field) from None
    return tool.run(principal, parsed)


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


def _result(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def _tool_result(value: Any, *, is_error: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": json.dumps(value)}], "isError": is_error}
    if isinstance(value, dict):
        result["structuredContent"] = value
    return result


def handle_mcp_body(principal: Principal, raw: bytes) -> Any:
    """The response to an MCP POST body: one response, a list (batch), or None when the body
    held only notifications."""
    try:
        message = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        return _error(None, PARSE_ERROR, "parse error: the body is not JSON")
    if message is None:
        return _error(None, INVALID_REQUEST, "invalid request: send a JSON-RPC 2.0 request object")
    if isinstance(message, list):
        if not message:
            return _error(None, INVALID_REQUEST, "invalid request: empty batch")
        answers = [answer for answer in (handle_mcp_message(principal, item) for item in message) if answer is not None]
        return answers or None
    return handle_mcp_message(principal, message)


def handle_mcp_message(principal: Principal, message: Any) -> dict[str, Any] | None:
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
        request_id = message.get("id") if isinstance(message, dict) else None
        return _error(request_id, INVALID_REQUEST, 'invalid request: expected jsonrpc "2.0" and a method')
    is_notification = "id" not in message
    request_id = message.get("id")
    params = message.get("params") or {}
    method = message["method"]
    if is_notification:
        return None  # notifications (notifications/initialized, cancelled...) need no answer
    if not isinstance(params, dict):
        return _error(request_id, INVALID_PARAMS, "params must be an object")
    if method == "initialize":
        return _result(
            request_id,
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": SERVER_INFO,
                "instructions": "Tools act on your own gpufarm account: models, spending, credits, quota.",
            },
        )
    if method == "ping":
        return _result(request_id, {})
    if method == "tools/list":
        return _result(request_id, {"tools": [tool.view() for tool in TOOLS.values()]})
    if method == "tools/call":
        name = params.get("name")
        if name not in TOOLS:
            return _error(request_id, INVALID_PARAMS, f"unknown tool: {name}")
        try:
            value = run_tool(principal, name, params.get("arguments"))
        except AiplaneError as error:
            return _result(
                request_id,
                _tool_result(
                    {"error": error.message, "status": error.status, "code": error.code, "details": error.details},
                    is_error=True,
                ),
            )
        return _result(request_id, _tool_result(value, is_error=False))
    return _error(request_id, METHOD_NOT_FOUND, f"method not found: {method}")


def sse_events(post_path: str, *, window_s: float, heartbeat_s: float, sleep: Callable[[float], None]) -> Iterator[str]:
    """The MCP SSE transport's stream, bounded: announce where to POST messages (`endpoint`),
    then heartbeats until the window ends; clients reconnect for another window."""
    yield f"event: endpoint\ndata: {post_path}\n\n"
    waited = 0.0
    while waited + heartbeat_s <= window_s:
        sleep(heartbeat_s)
        waited += heartbeat_s
        yield ": keep-alive\n\n"


class A2AMessage(BaseModel):
    protocol: str
    from_agent: str | None = None
    to_agent: str | None = None
    action: str
    data: dict[str, Any] | None = None


def handle_agent(principal: Principal, raw: bytes) -> Any:
    """POST /api/v1/agent: JSON-RPC bodies are MCP; bodies with `"protocol": "a2a"` (or
    `from_agent`/`to_agent`/`action`) are agent-to-agent messages whose action names a tool."""
    try:
        message = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        raise ValidationError("the body is not JSON") from None
    if isinstance(message, list) or (isinstance(message, dict) and "jsonrpc" in message):
        return handle_mcp_body(principal, raw)
    if not isinstance(message, dict):
        raise ValidationError("send an MCP (JSON-RPC 2.0) or A2A message object")
    protocol = message.get("protocol") or ("a2a" if {"from_agent", "to_agent", "action"} & set(message) else None)
    if protocol == "mcp":
        return handle_mcp_message(principal, message)
    if protocol != "a2a":
        raise ValidationError(
            'cannot detect the agent protocol: use JSON-RPC 2.0 (MCP) or "protocol": "a2a"', param="protocol"
        )
    try:
        parsed = A2AMessage.model_validate({**message, "protocol": protocol})
    except PydanticValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValidationError(f"{field}: {first['msg']}", param=field) from None
    if parsed.action not in TOOLS:
        raise ValidationError(f"unknown action {parsed.action!r}; actions: {', '.join(TOOLS)}", param="action")
    result = run_tool(principal, parsed.action, parsed.data)
    return {
        "protocol": "a2a",
        "from_agent": parsed.to_agent,
        "to_agent": parsed.from_agent,
        "action": parsed.action,
        "status": "completed",
        "data": result,
    }
