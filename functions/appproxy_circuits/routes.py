"""appproxy circuits routes.

Contract rows of this group:
- DELETE /api/circuit/_/bulk
- DELETE /api/circuit/{circuit_id}
- GET /api/circuit/{circuit_id}
- GET /api/circuit/{circuit_id}/statistics
"""

from typing import Any

from fastapi import APIRouter, Body

from aiplane.appproxy import circuits
from aiplane.appproxy.schemas import BulkRemoveCircuitsRequest

router = APIRouter()


@router.delete("/api/circuit/_/bulk")
def remove_circuits(body: BulkRemoveCircuitsRequest | None = Body(default=None)) -> dict[str, bool]:
    circuits.remove_circuits(body.circuit_ids if body else [])
    return {"success": True}


@router.get("/api/circuit/{circuit_id}")
def get_circuit(circuit_id: str) -> dict[str, Any]:
    return circuits.serialize_circuit(circuits.get_circuit(circuit_id))


@router.delete("/api/circuit/{circuit_id}")
def remove_circuit(circuit_id: str) -> dict[str, bool]:
    circuits.remove_circuits([circuit_id])
    return {"success": True}


@router.get("/api/circuit/{circuit_id}/statistics")
def circuit_statistics(circuit_id: str) -> dict[str, Any]:
    return circuits.circuit_statistics(circuits.get_circuit(circuit_id))
