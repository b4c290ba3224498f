"""Health, metrics and statistics shared by the families' health routes."""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from aiplane.data.aws import client
from aiplane.settings import get_settings
from aiplane_shared.resources import IDENTITY_TABLE


class DependencyCheck(NamedTuple):
    healthy: bool
    response_time_ms: int


def check_database() -> DependencyCheck:
    """DescribeTable on the identity table: proves the endpoint, the credentials and the table."""
    started = time.perf_counter()
    try:
        client("dynamodb").describe_table(TableName=get_settings().resource(IDENTITY_TABLE.name))
        healthy = True
    except (BotoCoreError, ClientError):
        healthy = False
    return DependencyCheck(healthy=healthy, response_time_ms=round((time.perf_counter() - started) * 1000))


class RequestCounter:
    """Requests seen by this process (one Lambda instance, or the local server)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.total = 0
        self.in_flight = 0

    def begin(self) -> None:
        with self._lock:
            self.total += 1
            self.in_flight += 1

    def end(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            uptime = max(time.monotonic() - self.started, 1e-9)
            return {
                "requests_total": self.total,
                "requests_per_second": round(self.total / uptime, 3),
                "active_connections": self.in_flight,
                "uptime_seconds": round(uptime, 3),
            }


def prometheus_text(
    metrics: dict[str, tuple[str, float]], labels: dict[str, str] | None = None, counters: frozenset[str] = frozenset()
) -> str:
    """Render `{name: (help, value)}` as Prometheus exposition text: gauges, and counters for the
    names in `counters` (values that only grow)."""
    label_text = ""
    if labels:
        label_text = "{" + ",".join(f'{key}="{value}"' for key, value in sorted(labels.items())) + "}"
    lines: list[str] = []
    for name, (help_text, value) in metrics.items():
        kind = "counter" if name in counters else "gauge"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{label_text} {value}"]
    return "\n".join(lines) + "\n"


REQUESTS = RequestCounter()
