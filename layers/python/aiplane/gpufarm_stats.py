"""gpufarm system statistics (/stats and /metrics)."""

from __future__ import annotations

from typing import Any

from aiplane.health import REQUESTS


def system_stats() -> dict[str, Any]:
    counts = REQUESTS.snapshot()
    return {
        "requests_total": counts["requests_total"],
        "requests_per_second": counts["requests_per_second"],
        "active_connections": counts["active_connections"],
        # The GPU fleet and model serving records arrive with the gpufarm fleet work (issue 7);
        # until they exist there is nothing running to count.
        "gpu_instances_active": 0,
        "models_loaded": 0,
    }
