"""Domain errors. Each family renders them in its own envelope (`aiplane.api.envelopes`)."""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorKind(str, Enum):
    BAD_REQUEST = "bad_request"
    VALIDATION = "validation"
    UNAUTHENTICATED = "unauthenticated"  # no credentials
    INVALID_CREDENTIALS = "invalid_credentials"  # credentials present but wrong/expired/revoked
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYMENT_REQUIRED = "payment_required"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UPGRADE_REQUIRED = "upgrade_required"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    NOT_IMPLEMENTED = "not_implemented"
    BAD_GATEWAY = "bad_gateway"
    UNAVAILABLE = "unavailable"
    GATEWAY_TIMEOUT = "gateway_timeout"


STATUS_OF_KIND: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.VALIDATION: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.INVALID_CREDENTIALS: 401,
    ErrorKind.PAYMENT_REQUIRED: 402,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.UPGRADE_REQUIRED: 426,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.INTERNAL: 500,
    ErrorKind.NOT_IMPLEMENTED: 501,
    ErrorKind.BAD_GATEWAY: 502,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.GATEWAY_TIMEOUT: 504,
}


class AiplaneError(Exception):
    """An error with a meaning every family can render.

    `code` overrides the family's default machine-readable code for the kind (for example
    gpufarm's `SPENDING_LIMIT`); `param` names the offending field; `details` carries context.
    """

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        kind: ErrorKind | None = None,
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.message = message
        self.code = code
        self.param = param
        self.details = details
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return STATUS_OF_KIND[self.kind]


class BadRequestError(AiplaneError):
    """The request is malformed."""

    kind = ErrorKind.BAD_REQUEST


class ValidationError(AiplaneError):
    """A field failed validation."""

    kind = ErrorKind.VALIDATION


class UnauthenticatedError(AiplaneError):
    """No credentials were presented."""

    kind = ErrorKind.UNAUTHENTICATED


class InvalidCredentialsError(AiplaneError):
    """Credentials are wrong, expired or revoked."""

    kind = ErrorKind.INVALID_CREDENTIALS


class ForbiddenError(AiplaneError):
    """The caller may not do this."""

    kind = ErrorKind.FORBIDDEN


class NotFoundError(AiplaneError):
    """No such resource."""

    kind = ErrorKind.NOT_FOUND


class ConflictError(AiplaneError):
    """The resource exists or changed concurrently."""

    kind = ErrorKind.CONFLICT


class PaymentRequiredError(AiplaneError):
    """A spending limit or credit balance forbids this."""

    kind = ErrorKind.PAYMENT_REQUIRED


class PayloadTooLargeError(AiplaneError):
    """The request body (an uploaded file) is larger than allowed."""

    kind = ErrorKind.PAYLOAD_TOO_LARGE


class UpgradeRequiredError(AiplaneError):
    """The route speaks another protocol (a WebSocket route called over plain HTTP)."""

    kind = ErrorKind.UPGRADE_REQUIRED


class RateLimitedError(AiplaneError):
    """Too many requests."""

    kind = ErrorKind.RATE_LIMITED


class NotImplementedYetError(AiplaneError):
    """The route exists in the contract but is not built yet."""

    kind = ErrorKind.NOT_IMPLEMENTED


class BadGatewayError(AiplaneError):
    """An upstream answered badly."""

    kind = ErrorKind.BAD_GATEWAY


class UnavailableError(AiplaneError):
    """Nothing can serve this right now."""

    kind = ErrorKind.UNAVAILABLE


class GatewayTimeoutError(AiplaneError):
    """An upstream did not answer in time."""

    kind = ErrorKind.GATEWAY_TIMEOUT
