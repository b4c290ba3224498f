"""Fixtures for the runtime events area: the admin runtime client, unique names, and the path an
appended event takes to the trigger runner (domain bus rule → SQS queue → consumer)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from aiplane_shared import resources


@pytest.fixture
def runtime(family_clients) -> TestClient:
    return family_clients["runtime"]


@pytest.fixture
def headers(admin_api_key) -> dict[str, str]:
    return {"X-API-Key": admin_api_key}


@pytest.fixture
def unique() -> Callable[[str], str]:
    return lambda label: f"{label}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def drain_trigger_queue(local_stack) -> Callable[[], int]:
    """Runs the local dispatcher over the event-triggers queue (as `make run` does) until it is
    empty, so every appended event, and every event its functions sent, went through the consumer."""
    return lambda: local_stack.drain(resources.EVENT_TRIGGERS_QUEUE)
