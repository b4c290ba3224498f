"""gpufarm system statistics (/stats and /metrics): counts kept by the writes and what serves
now, never a read of every contract, model or request."""

from __future__ import annotations

from typing import Any

from aiplane.clock import now
from aiplane.commerce.records import READY_MODELS, ModelRecord
from aiplane.gpufarm.contract_states import running_count
from aiplane.gpufarm.records import GpuAgentRecord
from aiplane.health import REQUESTS
from aiplane.request_counts import SharedRequestCount


def system_stats(requests: SharedRequestCount) -> dict[str, Any]:
    """`requests_total`: every instance's (the shared count); the rate and connections: this instance's."""
    counts = REQUESTS.snapshot()
    return {
        "requests_total": requests.total(),
        "requests_per_second": counts["requests_per_second"],
        "active_connections": counts["active_connections"],
        "gpu_instances_active": running_count(),
        "models_loaded": models_loaded(),
    }


def models_loaded() -> int:
    """Models really serving: ready (the ready-now index) on a GPU agent that still heartbeats
    (aiplane.gpufarm.model_serving); reads the ready models and their agents, nothing else."""
    ready = [model for model in ModelRecord.ready_now.query(READY_MODELS) if model.agent_instance_id]
    agents = {model.agent_instance_id for model in ready}
    cutoff = now().timestamp()
    live = {
        agent.instance_id
        for agent in GpuAgentRecord.batch_get([(GpuAgentRecord.key(i), "META") for i in agents])
        if agent.expires_at_epoch > cutoff
    }
    return sum(1 for model in ready if model.agent_instance_id in live)
