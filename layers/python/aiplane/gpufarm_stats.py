"""gpufarm system statistics (/stats and /metrics)."""

from __future__ import annotations

from typing import Any

from aiplane.commerce.records import ALL_MODELS, MODEL_READY, ModelRecord
from aiplane.gpufarm.agent_liveness import live_instance_ids
from aiplane.gpufarm.contract_states import RUNNING, count_with_status
from aiplane.health import REQUESTS


def system_stats() -> dict[str, Any]:
    counts = REQUESTS.snapshot()
    return {
        "requests_total": counts["requests_total"],
        "requests_per_second": counts["requests_per_second"],
        "active_connections": counts["active_connections"],
        "gpu_instances_active": count_with_status(RUNNING),
        "models_loaded": models_loaded(),
    }


def models_loaded() -> int:
    """Models really serving: ready on a GPU agent that still heartbeats (aiplane.gpufarm.model_serving)."""
    live = live_instance_ids()
    ready = ModelRecord.everyone.query(ALL_MODELS, filter_condition=ModelRecord.status == MODEL_READY)
    return sum(1 for model in ready if model.agent_instance_id in live)
