"""How the ML worker's records answer over HTTP (and on its streams): experiments, jupyter services
and audit events. Kept apart from the services that read and write them, and importing only the
records, so that a function answering with one is granted no more than its own service needs (IAM
follows imports). The bodies that need a service's logic stay with it: a task's (its status
announcements carry it), a worker's (its effective status and free capacity), a reservation's.
"""

from __future__ import annotations

from typing import Any

from aiplane.mlworker.common import without_none
from aiplane.mlworker.models import (
    AuditEventRecord,
    ExperimentRecord,
    JupyterServiceRecord,
)


def experiment_body(experiment: ExperimentRecord) -> dict[str, Any]:
    return without_none(
        {
            "id": experiment.experiment_id,
            "name": experiment.name,
            "commit_id": experiment.commit_id,
            "created_at": experiment.created_at,
            "status": experiment.status,
        }
    )


def service_body(service: JupyterServiceRecord) -> dict[str, Any]:
    return without_none(
        {
            "id": service.service_id,
            "name": service.name,
            "status": service.status,
            "url": service.url,
            "token": service.token,
            "created_at": service.created_at,
            "error": service.error,
        }
    )


def worker_service_body(service: JupyterServiceRecord) -> dict[str, Any]:
    """What the worker needs to run it: the client's view plus image and workspace."""
    return without_none({**service_body(service), "image": service.image, "workspace": service.workspace})


def event_body(record: AuditEventRecord) -> dict[str, Any]:
    return without_none({**record.chained_fields(), "event_hash": record.event_hash})
