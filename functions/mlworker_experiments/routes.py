"""mlworker experiments routes.

Contract rows of this group:
- GET /v1/experiments
- POST /v1/experiments
"""

from typing import Any

from fastapi import APIRouter, Request

from aiplane.mlworker import experiments, views
from aiplane.mlworker.requests import actor_of
from aiplane.mlworker.schemas import CreateExperimentRequest

router = APIRouter()


@router.get("/v1/experiments")
def list_experiments() -> list[dict[str, Any]]:
    return [views.experiment_body(experiment) for experiment in experiments.list_experiments()]


@router.post("/v1/experiments", status_code=201)
def create_experiment(body: CreateExperimentRequest, request: Request) -> dict[str, Any]:
    return views.experiment_body(experiments.create_experiment(body, actor_of(request)))
