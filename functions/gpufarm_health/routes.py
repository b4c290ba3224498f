"""gpufarm health routes.

Contract rows of this group:
- GET /health
- GET /metrics
- GET /stats
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from aiplane.clock import now_iso
from aiplane.gpufarm_stats import system_stats
from aiplane.health import check_database, prometheus_text
from functions.family_app import openapi_router

router = APIRouter()
router.include_router(openapi_router("gpufarm"))


@router.get("/health")
def health() -> dict[str, Any]:
    database = check_database()
    return {
        "status": "ok" if database.healthy else "degraded",
        "timestamp": now_iso(),
        "checks": {"database": {"healthy": database.healthy, "response_time_ms": database.response_time_ms}},
    }


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> str:
    stats = system_stats(request.app.state.request_count)
    database = check_database()
    return prometheus_text(
        {
            "aiplane_requests_total": ("Requests the gpufarm API served, all instances", stats["requests_total"]),
            "aiplane_active_connections": ("Requests in flight on this instance", stats["active_connections"]),
            "aiplane_gpu_instances_active": ("GPU instances running", stats["gpu_instances_active"]),
            "aiplane_models_loaded": ("Models being served", stats["models_loaded"]),
            "aiplane_database_healthy": ("1 when DynamoDB answers", int(database.healthy)),
            "aiplane_database_response_time_ms": ("DynamoDB DescribeTable latency", database.response_time_ms),
        },
        counters=frozenset({"aiplane_requests_total"}),
    )


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    return {"timestamp": now_iso(), **system_stats(request.app.state.request_count)}
