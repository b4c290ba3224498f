"""The model-download queue's jobs, as the API sees them: one record per (backend, model) pull,
what GET /queue lists with its progress, plus an SQS message that feeds the download worker
(`pulls.py`, which talks to the backends). Cancelling marks the record; the worker re-reads it
while streaming the pull's progress and closes the pull when it sees the mark.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from aiplane.clock import epoch_of, now_iso
from aiplane.data.conditions import refused_by_condition
from aiplane.gateway import messaging
from aiplane.gateway.records import DOWNLOADS_PARTITION, DownloadJobRecord
from aiplane.observability import logger

JOB_VALIDITY_S = 6 * 3600
FINISHED_RETENTION_S = 24 * 3600
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)


def job_id_for(url: str, model: str) -> str:
    """One job per (backend, model): enqueuing the same pull twice while it is pending is a no-op."""
    return hashlib.sha256(f"{url}\n{model}".encode()).hexdigest()[:32]


def all_jobs() -> list[DownloadJobRecord]:
    now = time.time()
    jobs = [
        job
        for job in DownloadJobRecord.query(DOWNLOADS_PARTITION)
        if not job.expires_at_epoch or job.expires_at_epoch > now
    ]
    return sorted(jobs, key=lambda job: job.created_at)


def active_jobs() -> list[DownloadJobRecord]:
    now = time.time()
    return [job for job in all_jobs() if job.status in ACTIVE and job.valid_until > now]


def enqueue(backend_id: str, url: str, model: str) -> bool:
    """Queue a pull unless one for this backend and model is already pending; True when queued."""
    stamp = now_iso()
    created = epoch_of(stamp)
    job = DownloadJobRecord(
        DOWNLOADS_PARTITION,
        f"JOB#{job_id_for(url, model)}",
        id=job_id_for(url, model),
        model=model,
        url=url,
        backend_id=backend_id,
        status=QUEUED,
        scheduled_for=created,
        valid_until=created + JOB_VALIDITY_S,
        created_at=stamp,
        expires_at_epoch=created + JOB_VALIDITY_S + FINISHED_RETENTION_S,
    )
    pending = DownloadJobRecord.status.is_in(*ACTIVE) & (DownloadJobRecord.valid_until > created)
    try:
        job.save(condition=DownloadJobRecord.pk.does_not_exist() | ~pending)
    except PutError as error:
        if refused_by_condition(error):
            return False
        raise
    messaging.send_download_jobs([job.id])
    return True


def cancel(*, url: str | None = None, model: str | None = None) -> int:
    """Cancel pending and running pulls matching the backend URL and/or the model; returns how many."""
    url = url.rstrip("/") if url else None
    cancelled = 0
    for job in active_jobs():
        if (url and job.url != url) or (model and job.model != model):
            continue
        try:
            job.update(
                actions=[
                    DownloadJobRecord.status.set(CANCELLED),
                    DownloadJobRecord.progress_status.set(CANCELLED),
                    DownloadJobRecord.expires_at_epoch.set(int(time.time()) + FINISHED_RETENTION_S),
                ],
                condition=DownloadJobRecord.status.is_in(*ACTIVE),
            )
            cancelled += 1
        except UpdateError:  # it finished meanwhile
            logger.info("download finished before it could be cancelled", extra={"job": job.id})
    return cancelled


def remove_model(model: str) -> int:
    """DELETE /queue/{model} and DELETE /models/{id}?purge=true: the model's jobs go, running pulls stop."""
    return cancel(model=model)


def progress_events(
    view: Callable[[DownloadJobRecord], dict[str, Any]], *, idle_end_s: float, window_s: float, poll_s: float = 0.5
) -> Iterator[str]:
    """SSE for GET /queue/inProgress: `event: status` with each running pull's progress (as `view`
    shows it) when it changes. Ends once nothing has run for `idle_end_s`, or after `window_s`."""
    started = time.monotonic()
    last_activity = started
    sent: dict[str, tuple[Any, ...]] = {}
    while time.monotonic() - started < window_s:
        jobs = all_jobs()
        running = [job for job in jobs if job.status == RUNNING]
        if running:
            last_activity = time.monotonic()
        # Running pulls, plus the last word on pulls this stream followed that have just ended.
        for job in running + [job for job in jobs if job.id in sent and job.status not in ACTIVE]:
            shown = view(job)
            fingerprint = tuple(shown.values())
            if sent.get(job.id) != fingerprint:
                sent[job.id] = fingerprint
                yield f"event: status\ndata: {json.dumps(shown)}\n\n"
        if time.monotonic() - last_activity >= idle_end_s:
            return
        time.sleep(poll_s)
