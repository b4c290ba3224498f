"""mlworker plugins routes.

Contract rows of this group:
- DELETE /v1/plugins/{pluginName}/config
- GET /v1/plugins
- GET /v1/plugins/{pluginName}
- GET /v1/plugins/{pluginName}/config
- GET /v1/plugins/{pluginName}/health
- PUT /v1/plugins/{pluginName}/config
"""

from typing import Any

from fastapi import APIRouter, Request, Response

from aiplane.mlworker import plugins
from aiplane.mlworker.requests import actor_of, require_admin
from aiplane.mlworker.schemas import PluginConfigBody

router = APIRouter()  # plugin configuration applies to every worker: only admins change it


@router.get("/v1/plugins")
def list_plugins() -> list[dict[str, Any]]:
    return plugins.plugin_bodies()


@router.get("/v1/plugins/{pluginName}")
def get_plugin(pluginName: str) -> dict[str, Any]:
    return plugins.plugin_body(pluginName)


@router.get("/v1/plugins/{pluginName}/config")
def get_config(pluginName: str) -> dict[str, Any]:
    return plugins.config_of(pluginName)


@router.put("/v1/plugins/{pluginName}/config")
def put_config(pluginName: str, body: PluginConfigBody, request: Request) -> dict[str, Any]:
    require_admin(request)
    return plugins.update_config(pluginName, body, actor_of(request))


@router.delete("/v1/plugins/{pluginName}/config", status_code=204)
def disable_plugin(pluginName: str, request: Request) -> Response:
    require_admin(request)
    plugins.disable(pluginName, actor_of(request))
    return Response(status_code=204)


@router.get("/v1/plugins/{pluginName}/health")
def plugin_health(pluginName: str) -> dict[str, Any]:
    return plugins.health_body(pluginName)
