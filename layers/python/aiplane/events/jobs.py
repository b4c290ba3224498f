"""Jobs and leases: producers enqueue jobs, workers lease the oldest pending job of the types they
serve for a bounded time, then report it done or failed. Every state change is a conditional
write, so two leasers never hold one job; leases that run out return the job to the queue (the
lease-expiry schedule, and each lease request on its way)."""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from typing import Any

from pynamodb.exceptions import DeleteError, UpdateError
from pynamodb.expressions.update import Action

from aiplane.clock import now, rfc3339
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import Gsi1, get_or_404
from aiplane.errors import ConflictError, NotFoundError, ValidationError
from aiplane.events.models import LEASED, PENDING, Gsi2, JobRecord
from aiplane.events.views import job_view

DEFAULT_VALIDITY_S = 24 * 3600
MAX_LEASE_S = 24 * 3600
CANDIDATES_PER_ROUND = 5
LEASE_ROUNDS = 3
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: Any) -> float:
    """A Go duration ("30s", "1m30s", "500ms") in seconds; required, positive, at most 24 h."""
    if not isinstance(text, str) or not text:
        raise ValidationError('leaseDuration is required, e.g. "30s"', param="leaseDuration")
    parts = _DURATION.findall(text)
    if "".join(number + unit for number, unit in parts) != text:
        raise ValidationError(f'leaseDuration {text!r} is not a duration like "30s" or "1m30s"', param="leaseDuration")
    seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    if seconds < 1 or seconds > MAX_LEASE_S:
        raise ValidationError("leaseDuration must be between 1s and 24h", param="leaseDuration")
    return seconds


def _queue_key(task_type: str) -> str:
    return f"JOBQUEUE#{task_type}"


def create_job(
    task_type: str,
    *,
    operation: str = "",
    subject: str = "",
    entity_id: str = "",
    entity_type: str = "",
    payload: Any = None,
    scheduled_for: int | None = None,
    valid_until: int | None = None,
) -> dict[str, Any]:
    """Enqueues a job (producers in the layer call this; the contract has no route for it)."""
    if not task_type:
        raise ValidationError("taskType is required", param="taskType")
    current = int(time.time())
    scheduled_for = current if scheduled_for is None else scheduled_for
    valid_until = scheduled_for + DEFAULT_VALIDITY_S if valid_until is None else valid_until
    if valid_until <= scheduled_for:
        raise ValidationError("validUntil must be after scheduledFor", param="validUntil")
    job_id, created = str(uuid.uuid4()), rfc3339(now())
    order = f"{created}#{job_id}"
    record = JobRecord(
        f"JOB#{job_id}",
        "META",
        gsi1pk=_queue_key(task_type),
        gsi1sk=order,
        gsi2pk=f"JOBS#{PENDING}",
        gsi2sk=order,
        job_id=job_id,
        status=PENDING,
        task_type=task_type,
        operation=operation,
        subject=subject,
        entity_id=entity_id,
        entity_type=entity_type,
        payload=json.dumps(payload),
        scheduled_for=scheduled_for,
        valid_until=valid_until,
        created_at=created,
        expires_at_epoch=valid_until,
    )
    record.save(condition=JobRecord.pk.does_not_exist())
    return job_view(record)


def get_job(job_id: str) -> JobRecord:
    record = get_or_404(
        JobRecord, f"JOB#{job_id}", "META", missing=f"job {job_id!r} not found", param="id", consistent_read=True
    )
    if record.expires_at_epoch and record.expires_at_epoch <= time.time():
        raise NotFoundError(f"job {job_id!r} not found", param="id")
    return record


def list_jobs(status: str, limit: int, cursor: str | None) -> list[dict[str, Any]]:
    """Jobs in one state, oldest first; `cursor` is the createdAt of the last job seen."""
    condition = Gsi2.gsi2sk > f"{cursor}#\uffff" if cursor else None
    current = int(time.time())
    records = JobRecord.by_status.query(
        f"JOBS#{status}",
        range_key_condition=condition,
        filter_condition=JobRecord.valid_until > current,
        page_size=limit,
    )
    return [job_view(record) for record in itertools.islice(records, limit)]


def _leasable(task_type: str, current: int) -> list[JobRecord]:
    records = JobRecord.by_queue.query(
        _queue_key(task_type),
        filter_condition=(JobRecord.scheduled_for <= current) & (JobRecord.valid_until > current),
        page_size=CANDIDATES_PER_ROUND,
    )
    return list(itertools.islice(records, CANDIDATES_PER_ROUND))


def lease(leaser_id: Any, lease_duration: Any, job_types: Any) -> dict[str, Any]:
    if not isinstance(leaser_id, str) or not leaser_id:
        raise ValidationError("leaserId is required", param="leaserId")
    seconds = parse_duration(lease_duration)
    if not isinstance(job_types, list) or not job_types or not all(isinstance(t, str) and t for t in job_types):
        raise ValidationError("jobTypes must list at least one job type", param="jobTypes")
    return_expired_leases()
    for _ in range(LEASE_ROUNDS):
        current = int(time.time())
        candidates = sorted(
            (job for task_type in dict.fromkeys(job_types) for job in _leasable(task_type, current)),
            key=lambda job: job.gsi1sk,
        )
        if not candidates:
            break
        for job in candidates:
            expires = time.time() + seconds
            try:
                job.update(
                    actions=[
                        JobRecord.status.set(LEASED),
                        JobRecord.leaser_id.set(leaser_id),
                        JobRecord.lease_expires_epoch.set(expires),
                        JobRecord.gsi1pk.set("JOBLEASES"),
                        JobRecord.gsi1sk.set(f"{expires:015.3f}#{job.job_id}"),
                        JobRecord.gsi2pk.set(f"JOBS#{LEASED}"),
                    ],
                    condition=(JobRecord.status == PENDING) & (JobRecord.gsi1pk == job.gsi1pk),
                )
            except UpdateError as error:
                if refused_by_condition(error):
                    continue  # another leaser took it first
                raise
            return {**job_view(job), "leaseDuration": lease_duration}
    raise NotFoundError("no pending job of the listed types", param="jobTypes")


def _release(job: JobRecord, *, retry: bool, condition: Any) -> None:
    actions: list[Action] = [
        JobRecord.status.set(PENDING),
        JobRecord.leaser_id.remove(),
        JobRecord.lease_expires_epoch.remove(),
        JobRecord.gsi1pk.set(_queue_key(job.task_type)),
        JobRecord.gsi1sk.set(job.gsi2sk),
        JobRecord.gsi2pk.set(f"JOBS#{PENDING}"),
    ]
    if retry:
        actions.append(JobRecord.retry_count.add(1))
    job.update(actions=actions, condition=condition)


def _holder_condition(leaser_id: str) -> Any:
    return (
        (JobRecord.status == LEASED)
        & (JobRecord.leaser_id == leaser_id)
        & (JobRecord.lease_expires_epoch > time.time())
    )


def _not_held(job_id: str, leaser_id: str) -> ConflictError:
    return ConflictError(f"job {job_id!r} is not leased by {leaser_id!r} (or its lease expired)", param="leaserId")


def _required_leaser(leaser_id: Any) -> str:
    if not isinstance(leaser_id, str) or not leaser_id:
        raise ValidationError("leaserId is required", param="leaserId")
    return leaser_id


def held_job(job_id: Any, leaser_id: Any) -> JobRecord:
    """The job, if `leaser_id` holds a lease on it that has not run out (404 for no such job, 409 otherwise)."""
    if not isinstance(job_id, str) or not job_id:
        raise ValidationError("jobId is required", param="jobId")
    leaser_id = _required_leaser(leaser_id)
    job = get_job(job_id)
    if job.status != LEASED or job.leaser_id != leaser_id or (job.lease_expires_epoch or 0) <= time.time():
        raise _not_held(job_id, leaser_id)
    return job


def mark_done(job_id: str, leaser_id: Any) -> None:
    leaser_id = _required_leaser(leaser_id)
    job = get_job(job_id)
    try:
        job.delete(condition=_holder_condition(leaser_id))
    except DeleteError as error:
        if refused_by_condition(error):
            raise _not_held(job_id, leaser_id) from None
        raise


def mark_failed(job_id: str, leaser_id: Any) -> dict[str, Any]:
    """Returns the job to the queue with one more retry counted."""
    leaser_id = _required_leaser(leaser_id)
    job = get_job(job_id)
    try:
        _release(job, retry=True, condition=_holder_condition(leaser_id))
    except UpdateError as error:
        if refused_by_condition(error):
            raise _not_held(job_id, leaser_id) from None
        raise
    return job_view(job)


def return_expired_leases() -> list[str]:
    """Puts every job whose lease ran out back in the pending queue; returns their task types (one per job)."""
    current = time.time()
    returned: list[str] = []
    for job in JobRecord.by_queue.query("JOBLEASES", range_key_condition=Gsi1.gsi1sk < f"{current:015.3f}#"):
        try:
            _release(
                job,
                retry=False,
                condition=(JobRecord.status == LEASED)
                & (JobRecord.leaser_id == job.leaser_id)
                & (JobRecord.lease_expires_epoch <= current),
            )
            returned.append(job.task_type)
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
    return returned
