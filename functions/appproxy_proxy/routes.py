"""appproxy proxy routes.

Contract rows of this group:
- GET /v2/proxy/auth
- GET /v2/proxy/{token}/{session_id}/add
- POST /v2/conf

The /v2/proxy routes are public at the gateway: the /v2/conf token they carry is their credential.
/v2/conf is public too (Backend.AI managers send no token); it checks the manager token when configured to.
"""

from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from aiplane.api.auth import source_ip
from aiplane.appproxy import interactive
from aiplane.appproxy.schemas import AddRequest, ConfRequest, ProxyRequest, parse_params

router = APIRouter()


@router.post("/v2/conf")
def conf(body: ConfRequest, request: Request) -> dict[str, str]:
    interactive.authorize_conf(request.headers, source_ip(request))
    return {"token": interactive.issue_conf_token(body)}


@router.get("/v2/proxy/{token}/{session_id}/add")
def add(
    token: str, session_id: str, request: Request, body: dict[str, Any] | None = Body(default=None)
) -> dict[str, Any]:
    params = parse_params(AddRequest, request.query_params, body)
    proxy_auth_url = str(request.url_for("proxy_auth"))
    return {"code": 200, "url": interactive.add_url(proxy_auth_url, token, session_id, params)}


@router.get("/v2/proxy/auth", name="proxy_auth")
def proxy_auth(request: Request, body: dict[str, Any] | None = Body(default=None)) -> Response:
    params = parse_params(ProxyRequest, request.query_params, body)
    redirect_url, reused = interactive.open_app(params)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"redirect_url": redirect_url, "reuse": reused})
    return RedirectResponse(redirect_url, status_code=302)
