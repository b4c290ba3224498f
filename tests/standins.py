"""The one way tests serve a stand-in over HTTP: a real server on 127.0.0.1 at a free port, in a daemon
thread, with a request handler that has what stand-ins answer with. Standard library only, so every
tier (tests/unit, which runs without moto, included) can use it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseServer
from typing import Any


def serve_in_background(server: BaseServer) -> None:
    """Serves `server` from a daemon thread, so a test that never stops it still lets pytest exit."""
    threading.Thread(target=server.serve_forever, daemon=True).start()


class _Server(ThreadingHTTPServer):
    stand_in: LoopbackServer


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 until stop(); a handler reaches this object as `self.server.stand_in`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.stand_in = self
        self.port: int = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        serve_in_background(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class StandInHandler(BaseHTTPRequestHandler):
    """A quiet request handler with helpers for JSON bodies, streams and redirects."""

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test): nothing left to answer

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def read_json(self, empty: Any = None) -> Any:
        """The request's JSON body, or `empty` when it has none."""
        raw = self.read_body()
        return json.loads(raw) if raw else empty

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """A whole answer with its Content-Length; `headers` may override the others."""
        self.send_response(status)
        fields = {"Content-Type": content_type} if content_type else {}
        for name, value in {**fields, "Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), headers=headers)

    def redirect(self, status: int, location: str) -> None:
        self.send_body(status, b"", content_type=None, headers={"Location": location})

    def start_stream(self, content_type: str, status: int = 200) -> None:
        """Headers for a body of unknown length (SSE, NDJSON): it ends when the connection closes."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def send_piece(self, data: bytes) -> None:
        """One piece of a stream, sent now."""
        self.wfile.write(data)
        self.wfile.flush()
