"""gpufarm commerce tests: users made through the gpufarm auth API, and a real HTTP model server
on 127.0.0.1 standing in for a GPU instance that serves a model."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

PASSWORD = "correct-horse-42"


@dataclass
class User:
    id: str
    headers: dict[str, str]


@pytest.fixture
def gpufarm(family_clients) -> TestClient:
    return family_clients["gpufarm"]


@pytest.fixture
def admin(admin_api_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_api_key}"}


@pytest.fixture
def make_user(gpufarm) -> Callable[[], User]:
    def make() -> User:
        email = f"farm-{uuid.uuid4().hex[:10]}@example.com"
        registered = gpufarm.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Farmer"}
        )
        assert registered.status_code == 201, registered.text
        login = gpufarm.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return User(
            registered.json()["user"]["id"], {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}
        )

    return make


@pytest.fixture
def user(make_user) -> User:
    return make_user()


class _ModelServer(BaseHTTPRequestHandler):
    """POST /ok answers predictions, /slow answers late, /broken 500s, /reject 422s, /text non-JSON."""

    received: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append(body)
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path == "/broken":
            self._send(500, b'{"error": "CUDA out of memory"}')
        elif self.path == "/reject":
            self._send(422, b'{"error": "features must have 4 values"}')
        elif self.path == "/text":
            self._send(200, b"not json", content_type="text/plain")
        else:
            answer = {"outputs": {"predictions": [0.85, 0.15]}, "metadata": {"used_gpu": True}}
            self._send(200, json.dumps(answer).encode())

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def model_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ModelServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def upload(
    gpufarm: TestClient,
    headers: dict[str, str],
    filename: str = "net.onnx",
    content: bytes = b"onnx-bytes",
    **fields: str,
):
    return gpufarm.post("/api/v1/models/upload", headers=headers, files={"model": (filename, content)}, data=fields)
