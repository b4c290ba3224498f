"""The agent's HTTP listener: the URL it registers with gpufarm, which the API's proxy and
predict calls reach. It serves /health, then the components' routes, then forwards the rest to
the configured upstream (an inference server on this host); with none, an unknown path is 404."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from aiplane_agent.components import HttpRequest, HttpResponse, Route

RESPONSE_TIME_SMOOTHING = 0.2  # weight of the newest sample in the moving average


class LoadMeter:
    """Open connections and a moving average of response times, for the gpufarm heartbeat."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.connections = 0
        self.response_time_ms = 0.0
        self.lock = threading.Lock()

    def begin(self) -> float:
        with self.lock:
            self.connections += 1
        return time.monotonic()

    def end(self, started: float) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        with self.lock:
            self.connections -= 1
            previous = self.response_time_ms
            self.response_time_ms = (
                elapsed_ms
                if previous == 0
                else (RESPONSE_TIME_SMOOTHING * elapsed_ms + (1 - RESPONSE_TIME_SMOOTHING) * previous)
            )

    def snapshot(self, gpu_utilization: float | None) -> dict[str, Any]:
        with self.lock:
            connections, response_time = self.connections, self.response_time_ms
        load = gpu_utilization if gpu_utilization is not None else min(connections / self.capacity, 1.0)
        return {"connections": connections, "load": round(load, 3), "response_time_ms": round(response_time, 1)}


class Listener:
    def __init__(
        self,
        host: str,
        port: int,
        meter: LoadMeter,
        health: Callable[[], dict[str, Any]],
        upstream: str | None = None,
        upstream_timeout_s: float = 300.0,
    ) -> None:
        self.meter = meter
        self.health = health
        self.upstream = upstream.rstrip("/") if upstream else None
        self.upstream_timeout_s = upstream_timeout_s
        self.routes: list[Route] = []
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def mount(self, routes: list[Route]) -> None:
        self.routes.extend(routes)

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path == "/health":
            return HttpResponse.of_json(200, self.health())
        for route in self.routes:
            params = route.match(request.method, request.path)
            if params is not None:
                request.path_params = params
                return route.handler(request)
        if self.upstream:
            return self._forward(request)
        return HttpResponse.of_json(404, {"error": f"nothing on this agent serves {request.method} {request.path}"})

    def _forward(self, request: HttpRequest) -> HttpResponse:
        assert self.upstream is not None  # only called when the agent fronts one
        try:
            upstream = httpx.request(
                request.method,
                self.upstream + request.path,
                params=request.query,
                content=request.body,
                timeout=self.upstream_timeout_s,
                headers={"Content-Type": request.headers.get("content-type", "application/json")},
            )
        except httpx.HTTPError as error:
            return HttpResponse.of_json(502, {"error": f"upstream unreachable: {type(error).__name__}"})
        return HttpResponse(
            upstream.status_code, upstream.content, upstream.headers.get("content-type", "application/json")
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                started = listener.meter.begin()
                try:
                    parts = urlsplit(self.path)
                    request = HttpRequest(
                        method=self.command,
                        path=parts.path,
                        query=dict(parse_qsl(parts.query)),
                        headers={name.lower(): value for name, value in self.headers.items()},
                        body=self.rfile.read(int(self.headers.get("Content-Length") or 0)),
                    )
                    try:
                        response = listener.answer(request)
                    except Exception as error:  # a component's bug answers 500, the listener lives on
                        response = HttpResponse(500, json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
                    self.send_response(response.status)
                    self.send_header("Content-Type", response.content_type)
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    self.wfile.write(response.body)
                finally:
                    listener.meter.end(started)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
