"""Helpers for identity tests: users made through the public API, and clients from other
source addresses (login throttling counts per source)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from functions.family_app import build_family_app

STRONG_PASSWORD = "correct-horse-42"


@dataclass
class RegisteredUser:
    id: str
    email: str
    password: str
    token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


KEY_WINDOW_MARGIN_S = 15  # longer than any rate-limit test takes


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def runtime(family_clients) -> TestClient:
    return family_clients["runtime"]


@pytest.fixture
def admin(admin_api_key) -> dict[str, str]:
    return {"X-API-Key": admin_api_key}


@pytest.fixture
def make_user(runtime) -> Callable[..., RegisteredUser]:
    def make(label: str = "user", password: str = STRONG_PASSWORD) -> RegisteredUser:
        email = unique_email(label)
        response = runtime.post("/register", json={"email": email, "password": password, "friendlyName": label})
        assert response.status_code == 201, response.text
        body = response.json()
        return RegisteredUser(id=body["user"]["id"], email=email, password=password, token=body["token"])

    return make


def client_from(family: str, source_ip: str) -> TestClient:
    return TestClient(build_family_app(family), raise_server_exceptions=False, client=(source_ip, 50000))


def fresh_source() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def set_limits(monkeypatch, **changes) -> None:
    """Changes this (local) environment's settings for one test."""
    from aiplane.settings import current_environment
    from aiplane_shared.environments import ENVIRONMENTS

    environment = current_environment()
    monkeypatch.setitem(ENVIRONMENTS, environment.name, environment._replace(**changes))


@pytest.fixture(autouse=True)
def login_window_that_does_not_roll_over(monkeypatch):
    """Login throttles count in fixed windows; a test straddling a boundary would see its count
    reset, so tests get very long windows (same limits)."""
    from aiplane.settings import current_environment

    environment = current_environment()
    names = (
        "login_failures_per_account_and_source",
        "login_failures_per_account",
        "login_failures_per_source",
        "registrations_per_source",
    )
    set_limits(monkeypatch, **{name: getattr(environment, name)._replace(window_s=10**9) for name in names})


@pytest.fixture
def key_window_not_ending():
    """The per-key limit counts per minute (and the tests check Retry-After against it): a test
    starting in the last seconds of a minute waits for the next one."""
    from aiplane.identity import rate_limits

    to_boundary = rate_limits.WINDOW_S - time.time() % rate_limits.WINDOW_S
    if to_boundary < KEY_WINDOW_MARGIN_S:
        time.sleep(to_boundary + 0.1)
