"""Hooks: built-in local hooks and remote hooks, in both remote protocols.

- v0.0.52 protocol (a hook call without `tool_name`): POST `{startingTime, input, dataType,
  transition, args}` to `endpointUrl`, answered by `{output, dataType, error?, transition}`.
- OpenAPI-tools protocol (a hook call with `tool_name`, and model tools): `{endpointUrl}/openapi.json`
  is read and every operation becomes a tool named by its operationId.
Every remote call is bounded by the hook's `timeoutMs` (and by what is left of the task's time),
and goes through the outbound-URL policy for hooks: redirects are followed, each one checked.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiplane import outbound, outbound_policy
from aiplane.chains import store
from aiplane.errors import BadGatewayError, GatewayTimeoutError, NotFoundError, ValidationError
from aiplane.identity.principal import Principal
from aiplane.observability import logger
from aiplane.settings import get_settings

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT_MS = 5000
MAX_TIMEOUT_MS = int(get_settings().request_budget_s * 1000)  # a hook call fits in a buffered route's budget
OPENAPI_CACHE_S = 30.0
_HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class HookResult:
    output: Any
    data_type: str
    transition: str = ""


@dataclass(frozen=True)
class Tool:
    hook: str
    name: str
    description: str
    parameters: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


# ---- built-in local hooks ------------------------------------------------------------------------


def _echo(args: dict[str, Any], input_value: Any, input_type: str, timeout_s: float) -> HookResult:
    if "message" in args:
        return HookResult({"message": args["message"]}, "json")
    return HookResult(input_value, input_type)


def _print(args: dict[str, Any], input_value: Any, input_type: str, timeout_s: float) -> HookResult:
    logger.info("print hook", extra={"message": args.get("message", input_value)})
    return HookResult(input_value, input_type)


def _webhook(args: dict[str, Any], input_value: Any, input_type: str, timeout_s: float) -> HookResult:
    url = args.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError("the webhook hook needs args.url (http or https)", param="hook.args.url")
    payload = args.get("payload", {"input": input_value, "dataType": input_type})
    response = _send("POST", url, timeout_s, json_body=payload, headers=args.get("headers") or {})
    return HookResult({"status": response.status_code, "body": _json_or_text(response)}, "json")


_STRING = {"type": "string"}
LOCAL_HOOKS: dict[str, tuple[Callable[..., HookResult], str, dict[str, Any]]] = {
    "echo": (
        _echo,
        "Returns its message (or the task input) unchanged",
        {"type": "object", "properties": {"message": _STRING}},
    ),
    "print": (
        _print,
        "Logs its message (or the task input) and passes the input through",
        {"type": "object", "properties": {"message": _STRING}},
    ),
    "webhook": (
        _webhook,
        "POSTs a JSON payload to a URL and returns the status and body",
        {
            "type": "object",
            "properties": {
                "url": _STRING,
                "payload": {"type": "object"},
                "headers": {"type": "object", "additionalProperties": _STRING},
            },
            "required": ["url"],
        },
    ),
}


def supported(principal: Principal | None = None) -> list[str]:
    """The local hooks and the remote hooks the principal may view."""
    return sorted(LOCAL_HOOKS) + sorted(store.list_hook_names(principal))


def schemas(principal: Principal | None = None) -> dict[str, Any]:
    """Hook name → its schema: local hooks their argument schema, remote hooks (those the principal
    may view) their OpenAPI document."""
    result: dict[str, Any] = {name: schema for name, (_, _, schema) in LOCAL_HOOKS.items()}
    for name in store.list_hook_names(principal):
        hook = store.find_hook_by_name(name, principal)
        if hook is None:
            continue
        try:
            result[name] = _openapi_document(hook)
        except (BadGatewayError, GatewayTimeoutError, outbound_policy.OutboundRefused) as error:
            result[name] = {"error": error.message}
    return result


# ---- remote protocols ----------------------------------------------------------------------------


def _timeout_s(hook: dict[str, Any], limit_s: float) -> float:
    timeout_ms = hook.get("timeoutMs") or DEFAULT_TIMEOUT_MS
    return max(0.001, min(timeout_ms / 1000.0, limit_s))


def _send(
    method: str,
    url: str,
    timeout_s: float,
    *,
    json_body: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    try:
        return outbound.send(
            outbound_policy.HOOKS,
            method,
            url,
            json=json_body,
            params=params,
            headers=headers,
            timeout=timeout_s,
            follow_redirects=True,
        )
    except outbound.OutboundError as error:
        raise outbound.gateway_error(error, f"hook at {url}") from None


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _injected(hook: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """Headers, query and body values the hook injects into every call (`headers`, `properties`)."""
    headers = dict(hook.get("headers") or {})
    query: dict[str, Any] = {}
    body: dict[str, Any] = {}
    prop = hook.get("properties") or {}
    if prop.get("name"):
        target = {"header": headers, "query": query}.get(prop.get("in") or "body", body)
        target[prop["name"]] = prop.get("value") if target is not headers else str(prop.get("value"))
    return headers, query, body


def call_legacy(
    hook: dict[str, Any], args: dict[str, Any], input_value: Any, input_type: str, transition: str, limit_s: float
) -> HookResult:
    headers, query, extra = _injected(hook)
    body = {
        "startingTime": datetime.now(UTC).isoformat(),
        "input": input_value,
        "dataType": input_type,
        "transition": transition,
        "args": {**extra, **args},
    }
    answer = _json_or_text(
        _send(
            hook.get("method") or "POST",
            hook["endpointUrl"],
            _timeout_s(hook, limit_s),
            json_body=body,
            params=query or None,
            headers=headers,
        )
    )
    if not isinstance(answer, dict):
        raise BadGatewayError(f"hook {hook['name']!r} answered without a JSON object")
    if answer.get("error"):
        raise BadGatewayError(f"hook {hook['name']!r} failed: {answer['error']}")
    return HookResult(answer.get("output"), answer.get("dataType") or "any", answer.get("transition") or "")


_OPENAPI_CACHE: dict[str, tuple[float, dict[str, Any]]] = {}


def _openapi_document(hook: dict[str, Any], limit_s: float = 30.0) -> dict[str, Any]:
    url = hook["endpointUrl"].rstrip("/") + "/openapi.json"
    cached = _OPENAPI_CACHE.get(url)
    if cached and time.monotonic() - cached[0] < OPENAPI_CACHE_S:
        return cached[1]
    headers, _, _ = _injected(hook)
    document = _json_or_text(_send("GET", url, _timeout_s(hook, limit_s), headers=headers))
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise BadGatewayError(f"hook {hook['name']!r} serves no OpenAPI document at {url}")
    _OPENAPI_CACHE[url] = (time.monotonic(), document)
    return document


def _operations(hook: dict[str, Any], limit_s: float) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Tool name → (method, path, operation) for every operation in the hook's OpenAPI document."""
    result = {}
    for path, item in _openapi_document(hook, limit_s)["paths"].items():
        for method, operation in (item or {}).items():
            if method in _HTTP_METHODS and isinstance(operation, dict):
                name = operation.get("operationId") or re.sub(r"[^A-Za-z0-9_]+", "_", f"{method}_{path}").strip("_")
                result[name] = (method.upper(), path, operation)
    return result


def _resolve_ref(document: dict[str, Any], schema: Any) -> Any:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        node: Any = document
        for part in schema["$ref"][2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node
    return schema


def _tool_parameters(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in operation.get("parameters") or []:
        parameter = _resolve_ref(document, parameter)
        properties[parameter["name"]] = _resolve_ref(document, parameter.get("schema") or _STRING)
        if parameter.get("required"):
            required.append(parameter["name"])
    body = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json", {}).get("schema")
    body = _resolve_ref(document, body)
    if isinstance(body, dict):
        properties.update(body.get("properties") or {})
        required += body.get("required") or []
    return {"type": "object", "properties": properties, "required": required}


def call_operation(hook: dict[str, Any], tool_name: str, args: dict[str, Any], limit_s: float) -> Any:
    operations = _operations(hook, limit_s)
    if tool_name not in operations:
        raise NotFoundError(f"hook {hook['name']!r} has no tool {tool_name!r}", param="hook.tool_name")
    method, path, operation = operations[tool_name]
    headers, query, body = _injected(hook)
    arguments = dict(args)
    for parameter in operation.get("parameters") or []:
        name, where = parameter.get("name"), parameter.get("in")
        if name in arguments and where == "path":
            path = path.replace("{" + name + "}", str(arguments.pop(name)))
        elif name in arguments and where == "query":
            query[name] = arguments.pop(name)
        elif name in arguments and where == "header":
            headers[name] = str(arguments.pop(name))
    body.update(arguments)
    url = hook["endpointUrl"].rstrip("/") + path
    send_body = body if method not in ("GET", "DELETE") else None
    if method in ("GET", "DELETE"):
        query.update(body)
    return _json_or_text(
        _send(method, url, _timeout_s(hook, limit_s), json_body=send_body, params=query or None, headers=headers)
    )


# ---- what tasks call -----------------------------------------------------------------------------


def _remote(name: str, principal: Principal | None = None) -> dict[str, Any]:
    """A remote hook by name, if the chain's runner may view it (another user's hook is unknown)."""
    hook = store.find_hook_by_name(name, principal)
    if hook is None:
        raise NotFoundError(f"unknown hook {name!r}", param="hook.name")
    return hook


def call_hook(
    name: str,
    tool_name: str,
    args: dict[str, Any],
    input_value: Any,
    input_type: str,
    transition: str,
    limit_s: float,
    principal: Principal | None = None,
) -> HookResult:
    if name in LOCAL_HOOKS:
        return LOCAL_HOOKS[name][0](args, input_value, input_type, limit_s)
    hook = _remote(name, principal)
    if tool_name:
        return HookResult(call_operation(hook, tool_name, args, limit_s), "json", "ok")
    return call_legacy(hook, args, input_value, input_type, transition, limit_s)


def tools_of(
    hook_names: list[str], hidden: list[str], limit_s: float, principal: Principal | None = None
) -> list[Tool]:
    """The tools the named hooks offer a model, minus `hide_tools` (tool or hook.tool names)."""
    tools: list[Tool] = []
    for name in hook_names:
        if name in LOCAL_HOOKS:
            _, description, schema = LOCAL_HOOKS[name]
            tools.append(Tool(name, name, description, schema))
            continue
        hook = _remote(name, principal)
        document = _openapi_document(hook, limit_s)
        for tool_name, (_, _, operation) in _operations(hook, limit_s).items():
            description = operation.get("description") or operation.get("summary") or tool_name
            tools.append(Tool(name, tool_name, description, _tool_parameters(document, operation)))
    return [tool for tool in tools if tool.name not in hidden and f"{tool.hook}.{tool.name}" not in hidden]


def run_tool(tool: Tool, arguments: dict[str, Any], limit_s: float, principal: Principal | None = None) -> Any:
    if tool.hook in LOCAL_HOOKS:
        return LOCAL_HOOKS[tool.hook][0](arguments, arguments.get("message"), "json", limit_s).output
    return call_operation(_remote(tool.hook, principal), tool.name, arguments, limit_s)


def parse_arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
