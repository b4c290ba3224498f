"""Inference endpoints: one circuit per endpoint, and API tokens bound to it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiplane.appproxy.circuits import (
    CircuitExistsError,
    CircuitSpec,
    circuit_url,
    find_circuit,
    place_circuit,
    remove_circuit,
    serialize_circuit,
)
from aiplane.appproxy.models import CircuitRecord
from aiplane.appproxy.schemas import EndpointCreationRequest, EndpointTokenRequest
from aiplane.appproxy.workers import get_worker
from aiplane.errors import NotFoundError, ValidationError
from aiplane.appproxy.tokens import endpoint_token

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
    route_info = [
        {
            "session_id": route.session_id, "session_name": None, "kernel_host": route.kernel_host,
            "kernel_port": route.kernel_port, "protocol": route.protocol, "traffic_ratio": route.traffic_ratio,
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
    )
    circuit = find_circuit(spec.circuit_id)
    if circuit is None:
        try:
            circuit, worker = place_circuit(spec)
            return circuit_url(worker, circuit)
        except CircuitExistsError:
            circuit = _endpoint_circuit(endpoint_id)
    circuit.update(actions=[
        CircuitRecord.app.set(spec.app),
        CircuitRecord.route_info.set(spec.route_info),
        CircuitRecord.session_ids.set(spec.session_ids),
        CircuitRecord.open_to_public.set(spec.open_to_public),
        CircuitRecord.user_id.set(spec.user_id),
        CircuitRecord.updated_at.set(datetime.now(UTC)),
    ])
    return circuit_url(get_worker(circuit.worker_id), circuit)


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
