"""appproxy coordinator health: version and per-worker slot counts."""

from __future__ import annotations

from typing import Any

from aiplane.appproxy.workers import list_workers
from aiplane.version import VERSION


def coordinator_status() -> dict[str, Any]:
    return {
        "coordinator_version": VERSION,
        "workers": [
            {
                "authority": worker.authority,
                "available_slots": int(worker.available_slots),
                "occupied_slots": int(worker.occupied_slots),
                "ha_setup": int(worker.nodes) > 1,
            }
            for worker in list_workers()
        ],
    }
