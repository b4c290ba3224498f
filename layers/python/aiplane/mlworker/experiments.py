"""Experiments: named records a task's snapshot belongs to.

`commit_id` is content-addressed: the SHA-1 of the experiment's canonical creation record, so the
same experiment is identified the same way anywhere it is copied.
"""

from __future__ import annotations

import hashlib
import uuid

from aiplane.audit_chain import canonical_json
from aiplane.clock import now_iso
from aiplane.mlworker import audit
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.models import EXPERIMENTS_PARTITION, ExperimentRecord
from aiplane.mlworker.schemas import CreateExperimentRequest


def create_experiment(request: CreateExperimentRequest, actor: Actor) -> ExperimentRecord:
    experiment_id, moment = str(uuid.uuid4()), now_iso()
    content = {
        "id": experiment_id,
        "name": request.name,
        "description": request.description,
        "created_at": moment,
        "user_id": actor.user_id,
    }
    experiment = ExperimentRecord(
        f"EXPERIMENT#{experiment_id}",
        gsi1sk=f"{moment}#{experiment_id}",
        experiment_id=experiment_id,
        name=request.name,
        description=request.description,
        commit_id=hashlib.sha1(canonical_json(content)).hexdigest(),
        user_id=actor.user_id or "",
        created_at=moment,
        status="active",
    )
    experiment.save(condition=ExperimentRecord.pk.does_not_exist())
    audit.append_event(
        "file_access",
        actor,
        resource=f"experiment/{experiment_id}",
        action="create_experiment",
        metadata={"name": request.name, "commit_id": experiment.commit_id},
    )
    return experiment


def list_experiments() -> list[ExperimentRecord]:
    return list(ExperimentRecord.by_created.query(EXPERIMENTS_PARTITION))
