"""gpufarm loadbalancer routes.

Contract rows of this group:
- GET /api/v1/loadbalancer/load
- GET /api/v1/loadbalancer/loads
- GET /api/v1/loadbalancer/strategy
- PUT /api/v1/loadbalancer/strategy

Beyond the contract (admin only; left out of the public OpenAPI document, listed in
aiplane_shared.routes.EXTRA_ROUTES for API Gateway):
- PUT /api/v1/loadbalancer/agents/{instance_id}: share an agent with every user, or set its weight
"""

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from aiplane.api.auth import current_principal
from aiplane.errors import ForbiddenError
from aiplane.gpufarm import loadbalancer
from aiplane.identity.principal import Principal

router = APIRouter()


class StrategyBody(BaseModel):
    strategy: str


class AgentSettingsBody(BaseModel):
    shared: bool | None = None
    weight: int | None = Field(default=None, ge=1, le=1000)


def _admin(request: Request) -> Principal:
    principal = current_principal(request)
    if not principal.is_admin:
        raise ForbiddenError("only an admin may change how the load balancer picks agents")
    return principal


@router.get("/api/v1/loadbalancer/loads")
def all_loads(request: Request, limit: int = Query(default=100, ge=1, le=1000), cursor: str | None = None) -> dict:
    """`limit` and `cursor` (beyond the contract) page an admin's view of every agent; `next_cursor` names the next page."""
    agents, next_cursor = loadbalancer.live_agents(current_principal(request), limit, cursor)
    return {
        "strategy": loadbalancer.get_strategy(),
        "loads": {agent.instance_id: agent.view() for agent in agents},
        "count": len(agents),
        **({"next_cursor": next_cursor} if next_cursor else {}),
    }


@router.get("/api/v1/loadbalancer/load")
def instance_load(request: Request, instance_id: str = Query(min_length=1)) -> dict:
    return {"instance_id": instance_id, **loadbalancer.agent_load(current_principal(request), instance_id).view()}


@router.get("/api/v1/loadbalancer/strategy")
def get_strategy() -> dict:
    return {"strategy": loadbalancer.get_strategy()}


@router.put("/api/v1/loadbalancer/strategy")
def set_strategy(body: StrategyBody, request: Request) -> dict:
    _admin(request)
    return {"strategy": loadbalancer.set_strategy(body.strategy), "message": "Load balancing strategy updated"}


@router.put("/api/v1/loadbalancer/agents/{instance_id}", include_in_schema=False)
def configure_agent(instance_id: str, body: AgentSettingsBody, request: Request) -> dict:
    _admin(request)
    return loadbalancer.configure_agent(instance_id, body.shared, body.weight)
