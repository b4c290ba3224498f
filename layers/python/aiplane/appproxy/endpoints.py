"""Inference endpoints: one circuit per endpoint, and API tokens bound to it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiplane import outbound_policy
from aiplane.appproxy import events
from aiplane.appproxy.circuits import (
    CircuitExistsError,
    CircuitSpec,
    circuit_url,
    find_circuit,
    healthy_routes,
    place_circuit,
    remove_circuit,
    serialize_circuit,
)
from aiplane.appproxy.models import CircuitRecord
from aiplane.appproxy.schemas import EndpointCreationRequest, EndpointTokenRequest
from aiplane.appproxy.tokens import endpoint_token
from aiplane.appproxy.workers import get_worker
from aiplane.errors import AiplaneError, NotFoundError, ValidationError

# An endpoint's circuit id derives from the endpoint id: creating it is a conditional write, so
# two racing requests for one endpoint end with one circuit.
ENDPOINT_CIRCUIT_NAMESPACE = uuid.UUID("0f3d9a52-1c4b-4e8a-b0f4-6a7e2c9d8b13")


def endpoint_circuit_id(endpoint_id: str) -> str:
    return str(uuid.uuid5(ENDPOINT_CIRCUIT_NAMESPACE, endpoint_id))


def _endpoint_circuit(endpoint_id: str) -> CircuitRecord:
    circuit = find_circuit(endpoint_circuit_id(endpoint_id))
    if circuit is None:
        raise NotFoundError(f"endpoint {endpoint_id} has no circuit")
    return circuit


def upsert_endpoint(endpoint_id: str, request: EndpointCreationRequest) -> str:
    """Create the endpoint's circuit, or update its routes; returns the endpoint's public URL."""
    for app, routes in request.apps.items():
        for index, route in enumerate(routes):
            param = f"apps.{app}[{index}].kernel_host"
            outbound_policy.check_host(route.kernel_host, route.kernel_port, outbound_policy.KERNELS, param=param)
    route_info: list[dict[str, Any]] = [
        {
            "session_id": route.session_id,
            "session_name": None,
            "kernel_host": route.kernel_host,
            "kernel_port": route.kernel_port,
            "protocol": route.protocol,
            "traffic_ratio": route.traffic_ratio,
        }
        for routes in request.apps.values()
        for route in routes
    ]
    spec = CircuitSpec(
        app=next(iter(request.apps), ""),
        protocol=route_info[0]["protocol"] if route_info else "http",
        app_mode="inference",
        route_info=route_info,
        open_to_public=request.open_to_public,
        user_id=request.tags.session.user_uuid,
        endpoint_id=endpoint_id,
        preferred_port=request.port,
        preferred_subdomain=request.subdomain,
        circuit_id=endpoint_circuit_id(endpoint_id),
        session=request.tags.session.model_dump(),
        endpoint=request.tags.endpoint.model_dump(),
        runtime_variant=request.tags.endpoint.runtime_variant,
        health_check=request.health_check.model_dump() if request.health_check else None,
    )
    circuit = find_circuit(endpoint_circuit_id(endpoint_id))
    if circuit is None:
        try:
            circuit, worker = place_circuit(spec)
            return circuit_url(worker, circuit)
        except CircuitExistsError:
            circuit = _endpoint_circuit(endpoint_id)
    if _placement_changes(circuit, spec):
        return _replace(circuit, spec)
    circuit.update(
        actions=[
            CircuitRecord.app.set(spec.app),
            CircuitRecord.route_info.set(spec.route_info),
            CircuitRecord.session_ids.set(spec.session_ids),
            CircuitRecord.open_to_public.set(spec.open_to_public),
            CircuitRecord.user_id.set(spec.user_id) if spec.user_id else CircuitRecord.user_id.remove(),
            CircuitRecord.health_check.set(spec.health_check),
            CircuitRecord.updated_at.set(datetime.now(UTC)),
        ]
    )
    worker = get_worker(circuit.worker_id)
    events.circuit_routes_updated(worker.authority, serialize_circuit(circuit), healthy_routes(circuit))
    return circuit_url(worker, circuit)


def _placement_changes(circuit: CircuitRecord, spec: CircuitSpec) -> bool:
    """A new protocol, or a preferred port or subdomain the circuit does not hold, needs another slot."""
    return (
        spec.protocol != circuit.protocol
        or (spec.preferred_port is not None and spec.preferred_port != circuit.port)
        or (spec.preferred_subdomain is not None and spec.preferred_subdomain != circuit.subdomain)
    )


def _replace(circuit: CircuitRecord, spec: CircuitSpec) -> str:
    """Move the endpoint's circuit to a slot that fits the new settings; if none does, it goes back
    where it was and the refusal stands."""
    previous = CircuitSpec(
        app=circuit.app,
        protocol=circuit.protocol,
        app_mode=circuit.app_mode,
        route_info=list(circuit.route_info),
        open_to_public=circuit.open_to_public,
        user_id=circuit.user_id,
        endpoint_id=circuit.endpoint_id,
        preferred_port=int(circuit.port) if circuit.port is not None else None,
        preferred_subdomain=circuit.subdomain,
        circuit_id=circuit.circuit_id,
        session=spec.session,
        endpoint=spec.endpoint,
        runtime_variant=circuit.runtime_variant,
        health_check=circuit.health_check,
    )
    remove_circuit(circuit)
    try:
        placed, worker = place_circuit(spec)
    except AiplaneError:
        place_circuit(previous)
        raise
    return circuit_url(worker, placed)


def remove_endpoint(endpoint_id: str) -> None:
    if not remove_circuit(_endpoint_circuit(endpoint_id)):
        raise NotFoundError(f"endpoint {endpoint_id} has no circuit")


def issue_endpoint_token(endpoint_id: str, request: EndpointTokenRequest) -> str:
    """The API token the endpoint's worker verifies (aiplane.appproxy.tokens), valid until `exp`."""
    circuit = _endpoint_circuit(endpoint_id)
    expires_at = request.exp if request.exp.tzinfo else request.exp.replace(tzinfo=UTC)
    if expires_at <= datetime.now(UTC):
        raise ValidationError("exp must be in the future", param="exp")
    app_url = circuit_url(get_worker(circuit.worker_id), circuit)
    return endpoint_token(serialize_circuit(circuit), app_url, request.user_uuid, expires_at)
