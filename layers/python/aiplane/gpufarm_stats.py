"""gpufarm system statistics (/stats and /metrics)."""

from __future__ import annotations

from typing import Any

from aiplane.gpufarm.contract_states import RUNNING, count_with_status
from aiplane.health import REQUESTS


def system_stats() -> dict[str, Any]:
    counts = REQUESTS.snapshot()
    return {
        "requests_total": counts["requests_total"],
        "requests_per_second": counts["requests_per_second"],
        "active_connections": counts["active_connections"],
        "gpu_instances_active": count_with_status(RUNNING),
        # Served-model records arrive with the model serving work; until then none are loaded.
        "models_loaded": 0,
    }
