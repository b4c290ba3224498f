"""gpufarm commerce tests: users made through the gpufarm auth API, and a real HTTP model server
on 127.0.0.1 standing in for a GPU instance that serves a model."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.standins import LoopbackServer, StandInHandler

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


class _ModelServer(StandInHandler):
    """POST /ok answers predictions, /slow answers late, /broken 500s, /reject 422s, /text non-JSON."""

    def do_POST(self) -> None:
        self.read_body()
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path == "/broken":
            self.send_body(500, b'{"error": "CUDA out of memory"}')
        elif self.path == "/reject":
            self.send_body(422, b'{"error": "features must have 4 values"}')
        elif self.path == "/text":
            self.send_body(200, b"not json", content_type="text/plain")
        else:
            self.send_json({"outputs": {"predictions": [0.85, 0.15]}, "metadata": {"used_gpu": True}})


@pytest.fixture(scope="session")
def model_server() -> Iterator[str]:
    with LoopbackServer(_ModelServer) as server:
        yield server.url


def upload(
    gpufarm: TestClient,
    headers: dict[str, str],
    filename: str = "net.onnx",
    content: bytes = b"onnx-bytes",
    **fields: str,
):
    return gpufarm.post("/api/v1/models/upload", headers=headers, files={"model": (filename, content)}, data=fields)
