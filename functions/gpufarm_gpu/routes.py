"""gpufarm gpu routes.

Contract rows of this group:
- DELETE /api/v1/gpu/instances/{provider}/{instanceId}
- GET /api/v1/gpu/available
- GET /api/v1/gpu/examples
- GET /api/v1/gpu/instances
- GET /api/v1/gpu/preferences
- POST /api/v1/gpu/instances/batch
- POST /api/v1/gpu/instances/reserve
- POST /api/v1/gpu/instances/{provider}/{instanceId}
- POST /api/v1/gpu/preferences
- POST /api/v1/gpu/preferences/test
- POST /api/v1/gpu/proxy

Beyond the contract (the GPU agent's side of the fleet, only with a contract's agent credential
(aiplane_shared.routes.AGENT_ROUTES); left out of the public OpenAPI document, listed in
aiplane_shared.routes.EXTRA_ROUTES for API Gateway):
- POST /api/v1/gpu/agents/register, POST /api/v1/gpu/agents/heartbeat, DELETE /api/v1/gpu/agents/{instance_id}
- POST /api/v1/gpu/agents/{instance_id}/models (the uploaded models it serves),
  POST /api/v1/gpu/agents/{instance_id}/models/{model_id}/state (serving, or failed with why)
"""

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiplane.api.auth import current_principal
from aiplane.errors import ValidationError
from aiplane.gpufarm import catalog, contracts, loadbalancer, model_serving, preferences, proxy, views
from aiplane.gpufarm.offers import Filters
from aiplane.identity.principal import Principal

router = APIRouter()


class ContractConfigBody(BaseModel):
    duration_hours: float | None = Field(default=None, gt=0)
    auto_renew: bool = False
    market: Literal["on-demand", "spot"] = "on-demand"
    on_demand_fallback: bool = False  # a spot request may launch On-Demand when spot has no capacity
    max_price: float | None = Field(default=None, gt=0)  # USD an hour that failover may go up to

    def config(self, default_max_price: float | None = None) -> contracts.ContractConfig:
        body = self.model_dump()
        return contracts.ContractConfig(**{**body, "max_price": body["max_price"] or default_max_price or None})


class FiltersBody(BaseModel):
    min_vram: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)
    gpu_model: str | None = None
    location: str | None = None
    provider: str = catalog.ALL

    _provider = field_validator("provider")(catalog.canonical_provider)


class BatchBody(BaseModel):
    vastai_count: int = Field(default=0, ge=0, le=100)
    ionet_count: int = Field(default=0, ge=0, le=100)
    aws_count: int = Field(default=0, ge=0, le=100)
    filters: FiltersBody = Field(default_factory=FiltersBody)
    config: ContractConfigBody = Field(default_factory=ContractConfigBody)


class ReserveBody(BaseModel):
    count: int = Field(ge=1, le=100)
    filters: FiltersBody = Field(default_factory=FiltersBody)
    config: ContractConfigBody = Field(default_factory=ContractConfigBody)


class ProxyBody(BaseModel):
    """The contract's shape (`target` instance, `path`, `payload`) or AIServe.Farm's (`target_url`,
    `body`, `protocol`, `headers`), translated to the contract's in `resolve` (a target_url only
    ever names one of the caller's own agents)."""

    method: str = "POST"
    target: str | None = None
    path: str | None = None
    payload: Any = None
    timeout_s: float | None = Field(default=None, gt=0)
    protocol: Literal["http", "https", "mcp", "openinference"] | None = None
    target_url: str | None = Field(default=None, max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict, max_length=64)  # accepted; the proxy sends JSON
    body: Any = None

    @model_validator(mode="after")
    def _one_shape(self) -> "ProxyBody":
        if self.target_url is None and self.path is None:
            raise ValueError("path (or target_url) is required")
        if self.target_url is not None and (self.target is not None or self.path is not None):
            raise ValueError("give either target_url or target and path, not both")
        return self

    def resolve(self, principal: Principal) -> tuple[str | None, str, Any]:
        """(target instance, path, payload) in the contract's terms."""
        if self.target_url is None:
            return self.target, self.path or "", self.payload
        target, path = loadbalancer.own_agent_at(principal, self.target_url)
        return target, path, self.body if self.payload is None else self.payload


class PreferencesBody(BaseModel):
    preferred_vendors: list[str] | None = None
    preferred_tiers: list[str] | None = None
    min_vram: float | None = Field(default=None, ge=0)
    max_price_per_hour: float | None = Field(default=None, ge=0)
    priority: str | None = None


class AgentRegistration(BaseModel):
    instance_id: str = Field(min_length=1, max_length=128)
    url: str = Field(pattern=r"^https?://", max_length=256)
    gpus: list[dict[str, Any]] = Field(default_factory=list, max_length=64)


class AgentHeartbeat(BaseModel):
    instance_id: str = Field(min_length=1, max_length=128)
    connections: int = Field(default=0, ge=0)
    load: float = Field(default=0, ge=0)
    response_time_ms: float = Field(default=0, ge=0)


def _filters(body: FiltersBody) -> Filters:
    return Filters(min_vram=body.min_vram, max_price=body.max_price, gpu_model=body.gpu_model, location=body.location)


@router.get("/api/v1/gpu/instances")
def list_instances(
    provider: str = "all",
    min_vram: float | None = Query(default=None, ge=0),
    max_price: float | None = Query(default=None, ge=0),
    gpu_model: str | None = None,
    location: str | None = None,
) -> dict:
    provider = catalog.canonical_provider(provider)
    offers, errors = catalog.list_offers(provider, Filters(min_vram, max_price, gpu_model, location))
    return {
        "instances": [offer.public() for offer in offers],
        "count": len(offers),
        "provider": provider,
        "errors": errors,
    }


@router.post("/api/v1/gpu/instances/batch", status_code=201)
def batch_create(body: BatchBody, request: Request) -> dict:
    principal = current_principal(request)
    counts = {"vastai": body.vastai_count, "ionet": body.ionet_count, "aws": body.aws_count}
    if sum(counts.values()) < 1:
        raise ValidationError(
            "ask for at least one instance (vastai_count, ionet_count or aws_count)", param="vastai_count"
        )
    config, filters = body.config.config(body.filters.max_price), _filters(body.filters)
    picked, errors = {}, []
    for provider, count in counts.items():
        if count:
            picked[provider], provider_errors = contracts.pick_offers(provider, count, filters)
            errors += provider_errors
    offers = [offer for provider_offers in picked.values() for offer in provider_offers]
    created = contracts.create_contracts(principal, offers, config) if offers else []
    answer = {
        f"{provider}_instances": [r.contract_id for r in created if r.provider == provider] for provider in counts
    }
    return {**answer, "total_created": len(created), "errors": errors}


@router.post("/api/v1/gpu/instances/reserve", status_code=201)
def reserve(body: ReserveBody, request: Request) -> dict:
    principal = current_principal(request)
    provider = catalog.check_provider(body.filters.provider, allow_all=True)
    config = body.config.config(body.filters.max_price)
    offers, errors = contracts.pick_offers(provider, body.count, _filters(body.filters))
    created = contracts.create_contracts(principal, offers, config) if offers else []
    # gpu_model, vram and price: what AIServe.Farm's CLI prints of each (records follow the offers' order)
    reserved = [
        {
            "instance_id": r.offer_id,
            "provider": r.provider,
            "contract_id": r.contract_id,
            "gpu_model": offer.gpu_model,
            "vram": offer.vram_gb,
            "price": offer.price_per_hour,
        }
        for offer, r in zip(offers, created, strict=True)
    ]
    return {"reserved": reserved, "count": len(reserved), "requested": body.count, "errors": errors}


@router.post("/api/v1/gpu/instances/{provider}/{instanceId}", status_code=201)
def create_instance(provider: str, instanceId: str, body: ContractConfigBody, request: Request) -> dict:
    principal = current_principal(request)
    config = body.config()
    offer = contracts.resolve_offer(catalog.canonical_provider(provider), instanceId)
    [record] = contracts.create_contracts(principal, [offer], config)
    return views.contract_view(record)


@router.delete("/api/v1/gpu/instances/{provider}/{instanceId}")
def destroy_instance(provider: str, instanceId: str, request: Request) -> dict:
    record = contracts.find_for_destroy(current_principal(request), catalog.canonical_provider(provider), instanceId)
    contracts.destroy(record)
    return {"message": "Instance destroyed successfully", "instance_id": instanceId, "contract_id": record.contract_id}


@router.post("/api/v1/gpu/proxy")
def proxy_request(body: ProxyBody, request: Request) -> Response:
    principal = current_principal(request)
    target, path, payload = body.resolve(principal)
    answer = proxy.forward(principal, body.method, target, path, payload, body.timeout_s)
    loadbalancer.count_proxied(answer.instance_id)
    return Response(
        content=answer.body,
        status_code=answer.status_code,
        media_type=answer.content_type,
        headers={"X-GPU-Instance": answer.instance_id},
    )


@router.get("/api/v1/gpu/preferences")
def get_preferences(request: Request) -> dict:
    return preferences.get_preferences(current_principal(request).id)


@router.post("/api/v1/gpu/preferences")
def set_preferences(body: PreferencesBody, request: Request) -> dict:
    saved = preferences.save_preferences(current_principal(request).id, body.model_dump(exclude_unset=True))
    return {"id": saved["id"], "message": "Preferences saved successfully", "preferences": saved}


@router.post("/api/v1/gpu/preferences/test")
def test_preferences(request: Request, body: PreferencesBody | None = None) -> dict:
    overrides = body.model_dump(exclude_unset=True) if body else {}
    return preferences.preview_selection(current_principal(request).id, overrides)


@router.get("/api/v1/gpu/available")
def available(vendor: str | None = None, tier: str | None = None) -> dict:
    gpus, errors = preferences.available_gpus(vendor, tier)
    return {"gpus": gpus, "count": len(gpus), "errors": errors}


@router.get("/api/v1/gpu/examples")
def examples() -> dict:
    return {"examples": preferences.EXAMPLES, "available_examples": list(preferences.EXAMPLES)}


@router.post("/api/v1/gpu/agents/register", status_code=201, include_in_schema=False)
def register_agent(body: AgentRegistration, request: Request) -> dict:
    return loadbalancer.register_agent(current_principal(request), body.instance_id, body.url, body.gpus)


@router.post("/api/v1/gpu/agents/heartbeat", include_in_schema=False)
def agent_heartbeat(body: AgentHeartbeat, request: Request) -> dict:
    loadbalancer.heartbeat(
        current_principal(request), body.instance_id, body.connections, body.load, body.response_time_ms
    )
    return {"instance_id": body.instance_id, "ok": True}


@router.delete("/api/v1/gpu/agents/{instance_id}", include_in_schema=False)
def deregister_agent(instance_id: str, request: Request) -> dict:
    loadbalancer.deregister_agent(current_principal(request), instance_id)
    return {"instance_id": instance_id, "deregistered": True}


class ModelStateReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["serving", "failed"]
    endpoint: str | None = Field(default=None, pattern=r"^https?://", max_length=512)
    error: str | None = Field(default=None, max_length=4096)


@router.post("/api/v1/gpu/agents/{instance_id}/models", include_in_schema=False)
def agent_models(instance_id: str, request: Request) -> dict:
    return {"models": model_serving.agent_models(current_principal(request), instance_id)}


@router.post("/api/v1/gpu/agents/{instance_id}/models/{model_id}/state", include_in_schema=False)
def report_model_state(instance_id: str, model_id: str, body: ModelStateReport, request: Request) -> dict:
    return model_serving.report(
        current_principal(request), instance_id, model_id, body.status, body.endpoint, body.error
    )
