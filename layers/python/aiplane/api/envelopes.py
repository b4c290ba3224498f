"""One error envelope per family, taken from its contract.

- runtime (003): {"error": {"code", "message", "param", "type"}} (OpenAI style)
- mlworker (002): {"error", "code", "trace_id"} with codes from the contract's enum
- gpufarm (004): {"error", "code", "details"} with the contract's codes
- appproxy (000): {"error", "code", "trace_id"}; the contract names no shape, so it follows
  mlworker's flat form
"""

from __future__ import annotations

from typing import Any

from aiplane.errors import AiplaneError, ErrorKind
from aiplane_shared.families import APPPROXY, GPUFARM, MLWORKER, RUNTIME

# runtime: (code, type) per kind, in the OpenAI vocabulary the contract's examples use.
_RUNTIME_CODES: dict[ErrorKind, tuple[str, str]] = {
    ErrorKind.BAD_REQUEST: ("invalid_request", "invalid_request_error"),
    ErrorKind.VALIDATION: ("invalid_parameter_value", "invalid_request_error"),
    ErrorKind.UNAUTHENTICATED: ("unauthorized", "authentication_error"),
    ErrorKind.INVALID_CREDENTIALS: ("unauthorized", "authentication_error"),
    ErrorKind.FORBIDDEN: ("forbidden", "permission_error"),
    ErrorKind.NOT_FOUND: ("not_found", "invalid_request_error"),
    ErrorKind.METHOD_NOT_ALLOWED: ("method_not_allowed", "invalid_request_error"),
    ErrorKind.CONFLICT: ("conflict", "invalid_request_error"),
    ErrorKind.PAYMENT_REQUIRED: ("payment_required", "invalid_request_error"),
    ErrorKind.PAYLOAD_TOO_LARGE: ("payload_too_large", "invalid_request_error"),
    ErrorKind.UPGRADE_REQUIRED: ("upgrade_required", "invalid_request_error"),
    ErrorKind.RATE_LIMITED: ("rate_limit_exceeded", "rate_limit_error"),
    ErrorKind.INTERNAL: ("internal_error", "server_error"),
    ErrorKind.NOT_IMPLEMENTED: ("not_implemented", "server_error"),
    ErrorKind.BAD_GATEWAY: ("backend_error", "server_error"),
    ErrorKind.UNAVAILABLE: ("service_unavailable", "server_error"),
    ErrorKind.GATEWAY_TIMEOUT: ("backend_timeout", "server_error"),
}

# mlworker's enum: BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, RATE_LIMITED,
# INTERNAL_ERROR, SERVICE_UNAVAILABLE, VALIDATION_ERROR. Kinds it lacks map to the nearest one.
_UPPER_CODES: dict[ErrorKind, str] = {
    ErrorKind.BAD_REQUEST: "BAD_REQUEST",
    ErrorKind.VALIDATION: "VALIDATION_ERROR",
    ErrorKind.UNAUTHENTICATED: "UNAUTHORIZED",
    ErrorKind.INVALID_CREDENTIALS: "UNAUTHORIZED",
    ErrorKind.FORBIDDEN: "FORBIDDEN",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.METHOD_NOT_ALLOWED: "BAD_REQUEST",
    ErrorKind.CONFLICT: "CONFLICT",
    ErrorKind.PAYMENT_REQUIRED: "FORBIDDEN",
    ErrorKind.PAYLOAD_TOO_LARGE: "BAD_REQUEST",
    ErrorKind.UPGRADE_REQUIRED: "BAD_REQUEST",
    ErrorKind.RATE_LIMITED: "RATE_LIMITED",
    ErrorKind.INTERNAL: "INTERNAL_ERROR",
    ErrorKind.NOT_IMPLEMENTED: "INTERNAL_ERROR",
    ErrorKind.BAD_GATEWAY: "SERVICE_UNAVAILABLE",
    ErrorKind.UNAVAILABLE: "SERVICE_UNAVAILABLE",
    ErrorKind.GATEWAY_TIMEOUT: "SERVICE_UNAVAILABLE",
}

# gpufarm's documented codes, extended in the same style where the contract names none.
_GPUFARM_CODES: dict[ErrorKind, str] = {
    **_UPPER_CODES,
    ErrorKind.UNAUTHENTICATED: "AUTH_REQUIRED",
    ErrorKind.INVALID_CREDENTIALS: "AUTH_INVALID",
    ErrorKind.PAYMENT_REQUIRED: "SPENDING_LIMIT",
    ErrorKind.PAYLOAD_TOO_LARGE: "QUOTA_EXCEEDED",
    ErrorKind.UPGRADE_REQUIRED: "UPGRADE_REQUIRED",
    ErrorKind.METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
    ErrorKind.NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    ErrorKind.BAD_GATEWAY: "BAD_GATEWAY",
    ErrorKind.GATEWAY_TIMEOUT: "GATEWAY_TIMEOUT",
}

_APPPROXY_CODES: dict[ErrorKind, str] = {
    **_UPPER_CODES,
    ErrorKind.NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    ErrorKind.BAD_GATEWAY: "BAD_GATEWAY",
    ErrorKind.GATEWAY_TIMEOUT: "GATEWAY_TIMEOUT",
}


def error_body(family: str, error: AiplaneError, trace_id: str) -> dict[str, Any]:
    kind = error.kind
    if family == RUNTIME:
        code, error_type = _RUNTIME_CODES[kind]
        return {
            "error": {"code": error.code or code, "message": error.message, "param": error.param, "type": error_type}
        }
    if family == MLWORKER:
        return {"error": error.message, "code": error.code or _UPPER_CODES[kind], "trace_id": trace_id}
    if family == GPUFARM:
        details = dict(error.details or {})
        if error.param:
            details.setdefault("field", error.param)
        return {"error": error.message, "code": error.code or _GPUFARM_CODES[kind], "details": details or None}
    if family == APPPROXY:
        body: dict[str, Any] = {
            "error": error.message,
            "code": error.code or _APPPROXY_CODES[kind],
            "trace_id": trace_id,
        }
        if error.details:
            body["details"] = error.details
        return body
    raise ValueError(f"unknown family {family!r}")
