"""The download worker's side of the model-download queue (`downloads.py`): a job's pull onto its
ollama backend.

A worker takes one job per message and follows its pull for a bounded slice of time (under the
Lambda timeout). While the pull progresses it keeps a heartbeat on the record and calls `heartbeat`
(the worker extends its message's visibility there). A pull still going when the slice ends, or
whose stream broke, goes back to the queue with a new message: Ollama keeps the layers it has, so
the next pull resumes. A worker killed mid-pull leaves a stale heartbeat: the sync tick's
`recover_stale` (or the message coming back) requeues the job. A pull killed or broken MAX_FAILURES
times fails, and so does one past its validity, so no job stays `running` forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import get_or_none
from aiplane.gateway import messaging
from aiplane.gateway.clients import BackendFailure, OllamaClient
from aiplane.gateway.downloads import (
    ACTIVE,
    CANCELLED,
    DONE,
    FAILED,
    FINISHED_RETENTION_S,
    QUEUED,
    RUNNING,
    all_jobs,
)
from aiplane.gateway.records import DOWNLOADS_PARTITION, DownloadJobRecord
from aiplane.gateway.registry_store import load_registry
from aiplane.observability import logger
from aiplane.outbound_policy import OutboundRefused

PROGRESS_WRITE_INTERVAL_S = 0.25
REQUEUED = "requeued"  # run_job's outcome when the pull continues in a later message
PULL_SLICE_S = 13 * 60  # the longest one worker follows a pull (the worker function has 15 minutes)
PULL_IDLE_TIMEOUT_S = 120.0  # a pull that sends no progress line for this long is broken
STALE_AFTER_S = 180.0  # a running job without a heartbeat for this long lost its worker
HEARTBEAT_EVERY_S = 60.0  # how often the worker's `heartbeat` runs while a pull progresses
MAX_FAILURES = 5  # kills and broken streams; slices that end on time do not count


def _finish(job: DownloadJobRecord, status: str, error: str | None = None) -> None:
    job.update(
        actions=[
            DownloadJobRecord.status.set(status),
            DownloadJobRecord.progress_status.set(status),
            DownloadJobRecord.error.set(error) if error else DownloadJobRecord.error.remove(),
            DownloadJobRecord.expires_at_epoch.set(int(time.time()) + FINISHED_RETENTION_S),
        ]
    )


def run_job(job_id: str, *, slice_s: float = PULL_SLICE_S, heartbeat: Callable[[], None] | None = None) -> str:
    """The download worker's unit of work; returns the job's status after this slice (or `dropped`,
    `busy` when another live worker holds it, `requeued` when the pull goes on in a later message).

    A job whose record or backend is gone is dropped (logged, not retried). A backend that cannot
    be reached raises BackendFailure so SQS retries the message (and parks it in the DLQ at last).
    """
    job = get_or_none(DownloadJobRecord, DOWNLOADS_PARTITION, f"JOB#{job_id}")
    if job is None:
        logger.warning("download job dropped: no such job", extra={"job": job_id})
        return "dropped"
    if job.status not in ACTIVE:
        logger.info("download job skipped", extra={"job": job_id, "status": job.status})
        return job.status
    if job.valid_until <= time.time():
        _finish(job, FAILED, "the job expired before it ran")
        return FAILED
    backend = load_registry().backends.get(job.backend_id)
    if backend is None or backend.type != "ollama" or backend.base_url != job.url:
        logger.warning(
            "download job dropped: its backend is gone",
            extra={"job": job_id, "backend": job.backend_id, "url": job.url},
        )
        _finish(job, FAILED, "the backend is gone")
        return "dropped"
    if not _claim(job):
        logger.info("download job held by a live worker", extra={"job": job_id})
        return "busy"
    if int(job.failures or 0) >= MAX_FAILURES:
        _finish(job, FAILED, f"the pull was killed or broke {MAX_FAILURES} times")
        return FAILED

    client = OllamaClient(job.url)
    try:
        response = client.pull(job.model, idle_timeout_s=PULL_IDLE_TIMEOUT_S)
    except OutboundRefused as refusal:  # no retry can change the policy's answer
        _finish(job, FAILED, refusal.message)
        logger.warning("download refused", extra={"job": job_id, "error": refusal.message})
        return FAILED
    except BackendFailure:
        # Unreachable: back to the queue, and SQS delivers the message again later.
        job.update(actions=[DownloadJobRecord.status.set(QUEUED), DownloadJobRecord.progress_status.set(QUEUED)])
        raise
    try:
        outcome = _follow(job, client.pull_progress(response), time.monotonic() + slice_s, heartbeat)
    except BackendFailure as failure:
        if not failure.transient:  # Ollama's own verdict (no such model...): no retry changes it
            _finish(job, FAILED, str(failure))
            logger.warning("download failed", extra={"job": job_id, "error": str(failure)})
            return FAILED
        logger.warning("download stream broke; the pull resumes later", extra={"job": job_id, "error": str(failure)})
        _requeue(job, failed=True)
        return REQUEUED
    finally:
        response.close()
    if outcome == DONE:
        _finish(job, DONE)
        messaging.request_sync([job.backend_id])  # record the new model on the backend's state
    elif outcome == REQUEUED:
        _requeue(job, failed=False)
    return outcome


def _stale() -> Any:
    return (DownloadJobRecord.status == RUNNING) & (
        DownloadJobRecord.heartbeat_at.does_not_exist() | (DownloadJobRecord.heartbeat_at < time.time() - STALE_AFTER_S)
    )


def _conditional_update(job: DownloadJobRecord, actions: list[Action], condition: Any) -> bool:
    try:
        job.update(actions=actions, condition=condition)
    except UpdateError as error:
        if refused_by_condition(error):
            return False
        raise
    return True


def _claim(job: DownloadJobRecord) -> bool:
    """Take the job: queued, or running under a worker whose heartbeat went stale (killed mid-pull: a failure)."""
    taking: list[Action] = [
        DownloadJobRecord.status.set(RUNNING),
        DownloadJobRecord.progress_status.set("starting"),
        DownloadJobRecord.heartbeat_at.set(time.time()),
        DownloadJobRecord.attempts.add(1),
    ]
    return _conditional_update(job, taking, DownloadJobRecord.status == QUEUED) or _conditional_update(
        job, [*taking, DownloadJobRecord.failures.add(1)], _stale()
    )


def _requeue(job: DownloadJobRecord, *, failed: bool, condition: Any = None) -> bool:
    """Back to the queue with a new message, unless the job changed meanwhile (cancelled, finished, retaken)."""
    if condition is None:  # still ours: running with the heartbeat this worker wrote last
        condition = (DownloadJobRecord.status == RUNNING) & (DownloadJobRecord.heartbeat_at == job.heartbeat_at)
    actions: list[Action] = [DownloadJobRecord.status.set(QUEUED), DownloadJobRecord.progress_status.set("resuming")]
    if failed:
        actions.append(DownloadJobRecord.failures.add(1))
    if not _conditional_update(job, actions, condition):
        return False
    messaging.send_download_jobs([job.id])
    return True


def recover_stale() -> int:
    """Run by the sync tick: requeue running jobs whose worker stopped beating, fail those that keep
    dying or outlived their validity; returns how many were requeued."""
    now = time.time()
    recovered = 0
    for job in all_jobs():
        if job.status not in ACTIVE:
            continue
        if job.valid_until <= now:
            _finish(job, FAILED, "the job expired before its pull completed")
        elif job.status == RUNNING and (job.heartbeat_at is None or job.heartbeat_at < now - STALE_AFTER_S):
            if int(job.failures or 0) + 1 >= MAX_FAILURES:
                _finish(job, FAILED, f"the pull was killed or broke {MAX_FAILURES} times")
            elif _requeue(job, failed=True, condition=_stale()):
                logger.warning("download worker lost; job requeued", extra={"job": job.id})
                recovered += 1
    return recovered


def _follow(
    job: DownloadJobRecord, progress: Iterator[dict[str, Any]], deadline: float, heartbeat: Callable[[], None] | None
) -> str:
    last_write = last_heartbeat = time.monotonic()
    for update in progress:
        if update.get("status") == "success":
            return DONE
        now = time.monotonic()
        if now >= deadline:
            logger.info("download slice over; the pull resumes in a new message", extra={"job": job.id})
            return REQUEUED
        if heartbeat is not None and now - last_heartbeat >= HEARTBEAT_EVERY_S:
            last_heartbeat = now
            heartbeat()
        if now - last_write < PROGRESS_WRITE_INTERVAL_S:
            continue
        last_write = now
        beat = time.time()
        actions: list[Action] = [
            DownloadJobRecord.progress_status.set(str(update.get("status") or "downloading")),
            DownloadJobRecord.heartbeat_at.set(beat),
        ]
        if update.get("digest"):
            actions.append(DownloadJobRecord.digest.set(str(update["digest"])))
        if update.get("total") is not None:
            actions.append(DownloadJobRecord.total.set(int(update["total"])))
        if update.get("completed") is not None:
            actions.append(DownloadJobRecord.completed.set(int(update["completed"])))
        try:
            job.update(actions=actions, condition=DownloadJobRecord.status == RUNNING)
        except UpdateError:  # no longer running: cancelled meanwhile
            logger.info("download cancelled", extra={"job": job.id})
            return CANCELLED
    job.refresh()
    return CANCELLED if job.status == CANCELLED else REQUEUED  # the stream ended without success
