"""runtime providers routes: external provider configs, keys in Secrets Manager, always masked.

Contract rows of this group:
- GET /providers/configs
- DELETE /providers/{providerType}/config
- GET /providers/{providerType}/config
Extra route: POST /providers/{providerType}/configure {apiKey, upsert}.
"""

from typing import Any

from fastapi import APIRouter, Depends

from aiplane.api.permissions import resource_permission
from aiplane.data.pagination import parse_limit
from aiplane.gateway import providers, views
from aiplane.gateway.schemas import ProviderConfigureBody

router = APIRouter(dependencies=[Depends(resource_permission("providers"))])


@router.get("/providers/configs")
def list_configs(limit: str | None = None, cursor: str | None = None) -> list[dict[str, Any]]:
    return [views.masked_view(config) for config in providers.list_configs(parse_limit(limit), cursor)]


@router.get("/providers/{providerType}/config")
def get_config(providerType: str) -> dict[str, Any]:
    return views.masked_view(providers.get_config(providerType))


@router.delete("/providers/{providerType}/config")
def delete_config(providerType: str) -> str:
    providers.delete_config(providerType)
    return "Provider config deleted successfully"


@router.post("/providers/{providerType}/configure", include_in_schema=False)
def configure(providerType: str, body: ProviderConfigureBody) -> dict[str, Any]:
    return views.masked_view(providers.configure(providerType, body.api_key, upsert=body.upsert))
