"""Hygiene for every tier: tests never reach real AWS (nor Telegram), whatever the developer's shell holds.

The unit tier runs without moto: any AWS call it makes by mistake goes to a closed loopback port
and fails at once. The tiers that need AWS (integration, e2e, packaged) start the embedded stack
from their own conftest (`tests/local_stack.py`), which points AWS_ENDPOINT_URL at moto.
"""

from __future__ import annotations

import os
import sys

import pytest

for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(variable, None)
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
# Nor the real Telegram Bot API: a poll that no test pointed at its stand-in (the poller's sample
# event in the handler tiers) reaches a closed loopback port and records the error.
os.environ["AIPLANE_TELEGRAM_API_BASE"] = "http://127.0.0.1:9"


def pytest_sessionfinish(session, exitstatus):
    stack = sys.modules.get("tests.local_stack")
    if stack is not None:
        stack.STACK.stop()


@pytest.fixture
def set_setting(monkeypatch):
    """Set a settings variable for one test: aiplane.settings reads the environment once."""
    from aiplane.settings import get_settings

    def setter(variable: str, value: str | None) -> None:
        """None: unset."""
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
        get_settings.cache_clear()

    yield setter
    get_settings.cache_clear()


class MovedClock:
    """`aiplane.clock.monotonic` as the in-process caches read it, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def moved_clock(monkeypatch):
    """The caches' clock (keys, permission levels, the routing snapshot), moved by `advance` without waiting."""
    import time

    from aiplane import clock

    moved = MovedClock()
    monkeypatch.setattr(clock, "monotonic", lambda: time.monotonic() + moved.offset)
    return moved
