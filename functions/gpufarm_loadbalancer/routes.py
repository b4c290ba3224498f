"""gpufarm loadbalancer routes.

Contract rows of this group:
- GET /api/v1/loadbalancer/load
- GET /api/v1/loadbalancer/loads
- GET /api/v1/loadbalancer/strategy
- PUT /api/v1/loadbalancer/strategy
"""

from fastapi import APIRouter, Query
from pydantic import BaseModel

from aiplane.gpufarm import loadbalancer

router = APIRouter()


class StrategyBody(BaseModel):
    strategy: str


@router.get("/api/v1/loadbalancer/loads")
def all_loads() -> dict:
    agents = loadbalancer.live_agents()
    return {
        "strategy": loadbalancer.get_strategy(),
        "loads": {agent.instance_id: agent.view() for agent in agents},
        "count": len(agents),
    }


@router.get("/api/v1/loadbalancer/load")
def instance_load(instance_id: str = Query(min_length=1)) -> dict:
    return {"instance_id": instance_id, **loadbalancer.agent_load(instance_id).view()}


@router.get("/api/v1/loadbalancer/strategy")
def get_strategy() -> dict:
    return {"strategy": loadbalancer.get_strategy()}


@router.put("/api/v1/loadbalancer/strategy")
def set_strategy(body: StrategyBody) -> dict:
    return {"strategy": loadbalancer.set_strategy(body.strategy), "message": "Load balancing strategy updated"}
