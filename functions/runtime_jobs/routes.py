"""runtime jobs routes: workers lease pending jobs and report them done or failed.

Contract rows of this group:
- GET /jobs/in-progress
- GET /jobs/pending
- PATCH /jobs/{id}/done
- PATCH /jobs/{id}/failed
- POST /leases
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from aiplane.api.permissions import resource_permission
from aiplane.clock import parse_rfc3339, rfc3339
from aiplane.data.pagination import parse_limit
from aiplane.events import jobs

router = APIRouter(dependencies=[Depends(resource_permission("jobs"))])


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    leaserId: Any = None
    leaseDuration: Any = None
    jobTypes: Any = None


class JobUpdateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    leaserId: Any = None


def _cursor(cursor: str | None) -> str | None:
    return rfc3339(parse_rfc3339(cursor, "cursor")) if cursor else None


@router.get("/jobs/pending")
def pending_jobs(limit: str | None = Query(None), cursor: str | None = Query(None)) -> list[dict[str, Any]]:
    return jobs.list_jobs(jobs.PENDING, parse_limit(limit), _cursor(cursor))


@router.get("/jobs/in-progress")
def jobs_in_progress(limit: str | None = Query(None), cursor: str | None = Query(None)) -> list[dict[str, Any]]:
    return jobs.list_jobs(jobs.LEASED, parse_limit(limit), _cursor(cursor))


@router.post("/leases", status_code=201)
def lease(request: AssignRequest) -> dict[str, Any]:
    return jobs.lease(request.leaserId, request.leaseDuration, request.jobTypes)


@router.patch("/jobs/{id}/done")
def job_done(id: str, request: JobUpdateRequest) -> str:
    jobs.mark_done(id, request.leaserId)
    return "job done"


@router.patch("/jobs/{id}/failed")
def job_failed(id: str, request: JobUpdateRequest) -> str:
    jobs.mark_failed(id, request.leaserId)
    return "job returned to the queue"
