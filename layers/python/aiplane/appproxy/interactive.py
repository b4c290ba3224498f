"""Interactive apps: the /v2/conf token, the legacy add URL and worker assignment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlencode

from aiplane import outbound_policy
from aiplane.appproxy.circuits import CircuitSpec, place_circuit, reusable_circuit, touch
from aiplane.appproxy.config import allow_unauthorized_conf
from aiplane.appproxy.models import session_app_key
from aiplane.appproxy.schemas import AddRequest, ConfRequest, ProxyRequest
from aiplane.appproxy.tokens import setup_url
from aiplane.appproxy.workers import api_endpoint, get_worker
from aiplane.errors import ForbiddenError, ValidationError
from aiplane.identity.authenticate import Credentials, authenticate, require_access
from aiplane.identity.tokens import issue_token, verify_token
from aiplane_shared.families import APPPROXY
from aiplane_shared.routes import MANAGER

CONF_TOKEN_TYPE = "appproxy_conf"
CONF_TOKEN_TTL = timedelta(hours=1)


def authorize_conf(headers: Mapping[str, str], source_ip: str | None) -> None:
    """/v2/conf is public at the gateway; unless unauthorized conf requests are allowed, it takes the manager token."""
    if not allow_unauthorized_conf():
        require_access(authenticate(APPPROXY, Credentials.from_headers(headers), source_ip=source_ip), MANAGER)


def issue_conf_token(request: ConfRequest) -> str:
    """A signed token carrying the kernel and session configuration; /v2/proxy routes are public
    at the gateway and trust only what this token says. It is bound to one session."""
    if not request.session.id:
        raise ValidationError("session.id is required: a conf token is bound to one session", param="session.id")
    outbound_policy.check_host(request.kernel_host, request.kernel_port, outbound_policy.KERNELS, param="kernel_host")
    token, _ = issue_token(
        request.session.user_uuid, ttl=CONF_TOKEN_TTL, token_type=CONF_TOKEN_TYPE, conf=request.model_dump(mode="json")
    )
    return token


def read_conf_token(token: str, session_id: str) -> ConfRequest:
    conf = ConfRequest.model_validate(verify_token(token, token_type=CONF_TOKEN_TYPE)["conf"])
    if not conf.session.id or conf.session.id != session_id:  # a token naming no session opens none
        raise ForbiddenError("the token was issued for another session")
    return conf


def add_url(proxy_auth_url: str, token: str, session_id: str, request: AddRequest) -> str:
    """The legacy add call answers the URL of the proxy call with the same parameters."""
    read_conf_token(token, session_id)
    params = request.model_dump(mode="json", exclude_none=True)
    params["envs"] = json.dumps(params["envs"])
    for name in ("open_to_public", "no_reuse"):
        params[name] = "true" if params[name] else "false"
    return f"{proxy_auth_url}?{urlencode({**params, 'token': token, 'session_id': session_id})}"


def open_app(request: ProxyRequest) -> tuple[str, bool]:
    """Assign a worker to the session's app; returns (the worker's /setup URL with its permit,
    whether a circuit was reused)."""
    conf = read_conf_token(request.token, request.session_id)
    protocol = "http" if request.protocol == "preopen" else request.protocol
    spec = CircuitSpec(
        app=request.app,
        protocol=protocol,
        app_mode="interactive",
        route_info=[
            {
                "session_id": request.session_id,
                "session_name": None,
                "kernel_host": conf.kernel_host,
                "kernel_port": conf.kernel_port,
                "protocol": protocol,
                "traffic_ratio": 1.0,
            }
        ],
        envs=request.envs,
        arguments=request.args,
        open_to_public=request.open_to_public,
        allowed_client_ips=request.allowed_client_ips,
        user_id=conf.session.user_uuid,
        preferred_port=request.port,
        preferred_subdomain=request.subdomain,
        reuse_key=session_app_key(request.session_id, request.app),
        session=conf.session.model_dump(),
    )
    circuit = None if request.no_reuse else reusable_circuit(spec)
    reused = circuit is not None
    if circuit is not None:
        touch(circuit)
        worker = get_worker(circuit.worker_id)
    else:
        circuit, worker = place_circuit(spec)
    return setup_url(api_endpoint(worker), circuit.circuit_id, request.redirect), reused
