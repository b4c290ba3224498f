"""The app factory: one FastAPI app per family (locally) or per resource group (one Lambda).

Every app gets the family's error envelope, auth dependency and a route for every contract row
of its groups. Contract rows a group does not implement yet answer 501 in the envelope (after
auth), so the OpenAPI document and the auth sweep always cover the whole contract.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator, Sequence

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIRouter
from starlette.exceptions import HTTPException as StarletteHTTPException

from aiplane.api.auth import family_auth_dependency
from aiplane.api.envelopes import error_body
from aiplane.api.json_body import check_json_body
from aiplane.errors import (
    STATUS_OF_KIND,
    AiplaneError,
    ErrorKind,
    GatewayTimeoutError,
    NotImplementedYetError,
    PayloadTooLargeError,
    ValidationError,
)
from aiplane.health import REQUESTS
from aiplane.observability import Correlated, correlation_id, logger
from aiplane.request_counts import SharedRequestCount
from aiplane.settings import get_settings
from aiplane.version import VERSION as API_VERSION
from aiplane_shared.payloads import LAMBDA_BODY_MAX_BYTES
from aiplane_shared.routes import STREAMING_ROUTES, routes_of

_KIND_OF_STATUS = {status: kind for kind, status in reversed(list(STATUS_OF_KIND.items()))}


def create_family_app(family: str, routers: Sequence[APIRouter], *, groups: Collection[str] | None = None) -> FastAPI:
    app = FastAPI(
        title=f"aiplane {family}",
        version=API_VERSION,
        openapi_url=None,  # served by the family's meta group (see functions/family_app.py)
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(family_auth_dependency(family))],
    )
    for router in routers:
        app.include_router(router)
    served = {route for router in routers for route in declared_routes(router)}
    _add_contract_placeholders(app, family, groups, served)
    _order_routes_by_specificity(app)
    _install_error_handlers(app, family)
    app.add_middleware(_Deadline, family=family)
    app.add_middleware(_CheckJsonBody, family=family)
    app.add_middleware(_BoundBody, family=family)
    app.state.request_count = SharedRequestCount(family)
    app.add_middleware(_CountRequests, shared=app.state.request_count)
    app.add_middleware(_NoSniff)
    app.add_middleware(Correlated)
    return app


# Bodies that may be JSON: declared so, or undeclared or plain text (routes that read the raw body parse those too).
_CHECKED_CONTENT_TYPES = ("", "application/json", "text/plain")


class _CheckJsonBody:
    """Refuses, in the family's envelope, a JSON body beyond `aiplane.api.json_body`'s bounds before
    any route reads it (pure ASGI: the body is read once and replayed to the app)."""

    def __init__(self, app, family: str) -> None:
        self.app = app
        self.family = family

    async def __call__(self, scope, receive, send) -> None:
        content_type = dict(scope.get("headers") or ()).get(b"content-type", b"").decode("latin-1")
        media_type = content_type.split(";")[0].strip().lower()
        if scope["type"] != "http" or not (media_type in _CHECKED_CONTENT_TYPES or media_type.endswith("+json")):
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        try:
            check_json_body(body)
        except ValidationError as refused:
            request = Request(scope)
            response = JSONResponse(
                error_body(self.family, refused, correlation_id(request.scope)), status_code=refused.status
            )
            await response(scope, receive, send)
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class _BoundBody:
    """Refuses with 413 in the family's envelope a body larger than one Lambda invocation carries
    (`LAMBDA_BODY_MAX_BYTES`), by its Content-Length or, without one, once that much has arrived.
    Deployed, API Gateway's gateway responses and WAF answer so before the invoke would fail
    (docs/cloud.md); here the local stack and any smaller body path give the same answer."""

    def __init__(self, app, family: str) -> None:
        self.app = app
        self.family = family

    def _refusal(self, scope) -> JSONResponse:
        refused = PayloadTooLargeError(
            f"request bodies over {LAMBDA_BODY_MAX_BYTES} bytes cannot pass through the API; "
            "send large files with the upload routes' presigned S3 form (a JSON announcement of the size)",
            details={"max_bytes": LAMBDA_BODY_MAX_BYTES},
        )
        return JSONResponse(error_body(self.family, refused, correlation_id(scope)), status_code=refused.status)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > LAMBDA_BODY_MAX_BYTES:
                await self._refusal(scope)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        messages, received = [], 0
        while True:  # no length declared (chunked): hold the body up to the bound
            message = await receive()
            messages.append(message)
            received += len(message.get("body", b""))
            if received > LAMBDA_BODY_MAX_BYTES:
                await self._refusal(scope)(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class _NoSniff:
    """Every response says `X-Content-Type-Options: nosniff`, so a browser never runs a body it
    guessed to be HTML or script (pure ASGI: cheap)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"x-content-type-options"
                ]
                message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
            await send(message)

        await self.app(scope, receive, send_with_header)


class _Deadline:
    """Answers 504 in the family's envelope once the route's budget has passed without a response
    (buffered routes: before API Gateway's 29 s gives its own 504; streaming routes: before the
    function's 15 minutes). A response that has started is never cut."""

    def __init__(self, app, family: str) -> None:
        self.app = app
        self.family = family

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        settings = get_settings()
        task = asyncio.ensure_future(self.app(scope, receive, tracking_send))
        done, _ = await asyncio.wait({task}, timeout=settings.request_budget_s)
        if not done and self._streams(scope):  # the route is known once the router has matched it
            done, _ = await asyncio.wait({task}, timeout=max(0.0, settings.stream_budget_s - settings.request_budget_s))
        if done or started:
            await task
            return
        task.cancel()
        request = Request(scope)
        trace_id = correlation_id(request.scope)
        logger.warning("request budget exhausted", extra={"trace_id": trace_id, "path": request.url.path})
        error = GatewayTimeoutError(f"{request.method} {request.url.path} did not finish within its time budget")
        await JSONResponse(
            error_body(self.family, error, trace_id), status_code=error.status, headers={"x-trace-id": trace_id}
        )(scope, receive, send)

    def _streams(self, scope) -> bool:
        route = scope.get("route")
        return (self.family, scope["method"], getattr(route, "path_format", None)) in STREAMING_ROUTES


class _CountRequests:
    """Feeds the process-wide request counter behind /metrics and /stats (pure ASGI: cheap) and,
    for the families counted across instances, the shared count (flushed after a response, at
    most every `request_counts.FLUSH_S`)."""

    def __init__(self, app, shared: SharedRequestCount) -> None:
        self.app = app
        self.shared = shared

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        REQUESTS.begin()
        if self.shared.counted:
            self.shared.note()
        try:
            await self.app(scope, receive, send)
        finally:
            REQUESTS.end()
        if self.shared.counted and self.shared.flush_due():
            await asyncio.to_thread(self.shared.flush)


def declared_routes(router: APIRouter, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route a router declares, through nested includes (FastAPI keeps
    an included router as one lazy entry, so `app.routes` does not list them)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            for method in route.methods or ():
                yield method, prefix + route.path_format
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from declared_routes(included, prefix + route.include_context.prefix)  # type: ignore[attr-defined]


def _add_contract_placeholders(
    app: FastAPI, family: str, groups: Collection[str] | None, served: set[tuple[str, str]]
) -> None:
    for contract_route in routes_of(family):
        if groups is not None and contract_route.group not in groups:
            continue
        if (contract_route.method, contract_route.path) in served:
            continue
        app.add_api_route(
            contract_route.path,
            _not_implemented(contract_route.method, contract_route.path),
            methods=[contract_route.method],
            name=f"{contract_route.method.lower()}_{contract_route.path}",
            responses={501: {"description": "Not implemented yet"}},
        )


def _not_implemented(method: str, path: str):
    async def not_implemented() -> None:
        raise NotImplementedYetError(f"{method} {path} is not implemented yet")

    return not_implemented


def _order_routes_by_specificity(app: FastAPI) -> None:
    """The included routers first (each keeps its own order: a group's router lists its literal
    paths before its parameters), then the placeholders, literal segments before parameters."""

    def key(route: object) -> tuple[int, ...]:
        if not isinstance(route, APIRoute):
            return ()
        return tuple(1 if segment.startswith("{") else 0 for segment in route.path_format.strip("/").split("/"))

    app.router.routes.sort(key=key)


def _install_error_handlers(app: FastAPI, family: str) -> None:
    def respond(request: Request, error: AiplaneError) -> JSONResponse:
        return JSONResponse(
            error_body(family, error, correlation_id(request.scope)), status_code=error.status, headers=error.headers
        )

    @app.exception_handler(AiplaneError)
    async def domain_error(request: Request, error: AiplaneError) -> JSONResponse:
        return respond(request, error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
        field = ".".join(location) or None
        message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid request"))
        return respond(request, ValidationError(message, param=field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = _KIND_OF_STATUS.get(error.status_code, ErrorKind.BAD_REQUEST)
        message = f"no route for {request.method} {request.url.path}" if error.status_code == 404 else str(error.detail)
        return respond(request, AiplaneError(message, headers=dict(error.headers or {}), kind=kind))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        trace_id = correlation_id(request.scope)
        logger.exception("unhandled error", extra={"trace_id": trace_id, "path": request.url.path})
        return JSONResponse(
            error_body(family, AiplaneError("internal server error"), trace_id),
            status_code=500,
            headers={"x-trace-id": trace_id, "x-content-type-options": "nosniff"},  # answered outside _NoSniff
        )
