"""Request models of the app proxy coordinator, as the contract (000) writes them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, Field, field_validator, model_validator

from aiplane.errors import ValidationError

Protocol = Literal["http", "grpc", "h2", "tcp"]
# Upstream's ProxyProtocol also names `preopen`; a worker may advertise it.
WorkerProtocol = Literal["http", "grpc", "h2", "tcp", "preopen"]
FrontendMode = Literal["wildcard", "port"]
AppMode = Literal["interactive", "inference"]

MAX_PORT = 65535
# A preferred subdomain becomes a DNS label under the worker's wildcard domain.
SUBDOMAIN_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class AppFilter(BaseModel):
    """Matches a circuit property named as upstream names them (`session.domain_name`,
    `endpoint.id`, ...); a `filtered_apps_only` worker takes only matching circuits."""

    key: str = Field(min_length=1, max_length=96)
    value: str = Field(max_length=1024)


class WorkerRequest(BaseModel):
    """Both registration bodies: 24.03's `use_tls`, or 25.x's `tls_listen`/`tls_advertised` with
    `wildcard_traffic_port` and `traefik_last_used_marker_path`."""

    authority: str = Field(min_length=1)
    frontend_mode: FrontendMode
    protocol: WorkerProtocol
    hostname: str = Field(min_length=1)
    use_tls: bool | None = None
    tls_listen: bool | None = None
    tls_advertised: bool | None = None
    api_port: int = Field(ge=1, le=MAX_PORT)
    port_range: list[int] | None = None
    wildcard_domain: str | None = None
    wildcard_traffic_port: int | None = Field(default=None, ge=1, le=MAX_PORT)
    filtered_apps_only: bool
    traefik_last_used_marker_path: str | None = None
    accepted_traffics: list[AppMode] = Field(default_factory=lambda: list[AppMode](["interactive", "inference"]))
    app_filters: list[AppFilter] = Field(default_factory=list)

    @model_validator(mode="after")
    def frontend_settings_match_the_mode(self) -> WorkerRequest:
        if self.use_tls is None and (self.tls_listen is None or self.tls_advertised is None):
            raise ValueError("use_tls (24.03), or tls_listen and tls_advertised, are required")
        if self.tls_listen is None:
            # Upstream's migration from use_tls: the worker advertised TLS (a proxy in front of it terminated it).
            self.tls_listen, self.tls_advertised = False, bool(self.use_tls)
        self.use_tls = self.tls_listen or bool(self.tls_advertised)
        if self.frontend_mode == "port":
            if self.port_range is None or len(self.port_range) != 2:
                raise ValueError("port_range must be [first, last] for a port frontend")
            first, last = self.port_range
            if not 1 <= first <= last <= MAX_PORT:
                raise ValueError(f"port_range must satisfy 1 <= first <= last <= {MAX_PORT}")
        elif not self.wildcard_domain:
            raise ValueError("wildcard_domain is required for a wildcard frontend")
        return self


class SessionConfig(BaseModel):
    id: str | None = None
    user_uuid: str
    group_id: str
    access_key: str | None = None
    domain_name: str


class ConfRequest(BaseModel):
    login_session_token: str | None
    kernel_host: str
    kernel_port: int = Field(ge=1, le=MAX_PORT)
    session: SessionConfig


class EndpointConfig(BaseModel):
    id: str
    runtime_variant: str | None = None
    existing_url: str | None = None


class EndpointTagConfig(BaseModel):
    session: SessionConfig
    endpoint: EndpointConfig


class InferenceAppConfig(BaseModel):
    session_id: str
    kernel_host: str
    kernel_port: int = Field(ge=1, le=MAX_PORT)
    protocol: Protocol = "http"
    traffic_ratio: float = Field(default=1.0, ge=0)


class HealthCheckConfig(BaseModel):
    """The model definition's health check, as 25.x managers send it with `version: v2`."""

    interval: float = Field(default=10.0, ge=0)
    path: str
    max_retries: int = Field(default=10, ge=1)
    max_wait_time: float = Field(default=15.0, ge=0)
    expected_status_code: int = Field(default=200, ge=100, le=599)


class EndpointCreationRequest(BaseModel):
    version: str | None = None  # 25.x managers send "v2"; 24.03 sends none
    health_check: HealthCheckConfig | None = None
    service_name: str
    tags: EndpointTagConfig
    apps: dict[str, list[InferenceAppConfig]]
    open_to_public: bool = False
    port: int | None = Field(default=None, ge=1, le=MAX_PORT)
    subdomain: str | None = Field(default=None, pattern=SUBDOMAIN_PATTERN)


class EndpointTokenRequest(BaseModel):
    user_uuid: str
    exp: datetime


class AddRequest(BaseModel):
    app: str = Field(min_length=1)
    protocol: WorkerProtocol  # `preopen` is served as http, as upstream does
    envs: dict[str, Any] = Field(default_factory=dict)
    args: str | None = None
    open_to_public: bool = False
    allowed_client_ips: str | None = None
    redirect: str = ""
    no_reuse: bool = False
    port: int | None = Field(default=None, ge=1, le=MAX_PORT)
    subdomain: str | None = Field(default=None, pattern=SUBDOMAIN_PATTERN)

    @field_validator("envs", mode="before")
    @classmethod
    def envs_may_arrive_as_json_text(cls, value: Any) -> Any:
        # In a query string the environment travels JSON-encoded.
        if isinstance(value, str):
            try:
                return json.loads(value or "{}")
            except json.JSONDecodeError:
                raise ValueError("envs must be a JSON object") from None
        return value


class ProxyRequest(AddRequest):
    token: str
    session_id: str


class ListSlotsRequest(BaseModel):
    wsproxy_host: str | None = None
    in_use: bool = True


class BulkRemoveCircuitsRequest(BaseModel):
    circuit_ids: list[str] = Field(default_factory=list)


Params = TypeVar("Params", bound=BaseModel)


def parse_params(model: type[Params], query: Mapping[str, str], body: Mapping[str, Any] | None) -> Params:
    """The contract gives these GET routes a body; clients send the fields as query parameters
    too (Backend.AI does). Body fields win over query fields of the same name."""
    try:
        return model.model_validate({**query, **(body or {})})
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ValidationError(f"{param}: {first['msg']}" if param else first["msg"], param=param) from None
