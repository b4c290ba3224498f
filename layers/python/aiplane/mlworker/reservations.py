"""GPU capacity reservations.

A reservation holds `gpu_count` GPUs on each of `node_count` distinct workers (of `gpu_type`, when
given) from now until it expires or its owner releases it. It is admitted only when that shape
fits now, counting running tasks and the other reservations (409 otherwise), and is pinned to
those workers (only workers that take its owner's work, `tenancy`): their reserved GPUs go only
to tasks naming the reservation (`backfill`), and the first such lease marks it `claimed`. Every
reservation bumps the ledger item's version and checks the versions of the workers it holds in the
same transaction, so racing reservations and leases serialize and the loser re-checks.
A non-admin's live reservations may hold at most the environment's
`mlworker_reservation_gpu_hours_per_user` (GPUs × hours until expiry); past it: 403. Reservations
are seen by their owner and by admins.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from aiplane.clock import now_iso
from aiplane.data.models import get_or_none
from aiplane.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from aiplane.identity.principal import Principal
from aiplane.mlworker import audit, backfill, cluster
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.common import connection, without_none
from aiplane.mlworker.models import META, ReservationRecord, WorkerRecord
from aiplane.mlworker.schemas import CreateReservationRequest
from aiplane.settings import get_settings
from aiplane_shared.environments import get_environment

SAVE_ATTEMPTS = 20
LIVE = ("active", "claimed")


def list_active() -> list[ReservationRecord]:
    return cluster.live_reservations(time.time())


def list_visible(principal: Principal) -> list[ReservationRecord]:
    return [r for r in list_active() if principal.is_admin or r.user_id == principal.id]


def gpu_hours_limit() -> float:
    return get_environment(get_settings().environment).mlworker_reservation_gpu_hours_per_user


def _gpu_hours(gpus: int, seconds: float) -> float:
    return gpus * max(0.0, seconds) / 3600


def _check_user_limit(principal: Principal, live: list[ReservationRecord], wanted_gpu_hours: float, now: float) -> None:
    if principal.is_admin:
        return
    held = sum(
        _gpu_hours(int(r.gpu_count) * int(r.node_count), r.expires_at_epoch - now)
        for r in live
        if r.user_id == principal.id
    )
    limit = gpu_hours_limit()
    if held + wanted_gpu_hours > limit + 1e-9:
        raise ForbiddenError(
            f"reservation limit exceeded: {wanted_gpu_hours:g} GPU-hours requested, {held:g} held, "
            f"at most {limit:g} GPU-hours per user",
        )


def create_reservation(request: CreateReservationRequest, principal: Principal, actor: Actor) -> ReservationRecord:
    wanted = request.gpu_count * request.node_count
    for _ in range(SAVE_ATTEMPTS):
        ledger = cluster.ledger()
        now = datetime.now(UTC)
        state = cluster.snapshot(now.timestamp())
        live = list(state.reservations.values())
        # Checked under the ledger's version like capacity, so one user's racing requests cannot pass together.
        _check_user_limit(principal, live, _gpu_hours(wanted, request.expires_minutes * 60), now.timestamp())
        usable = backfill.usable_by(state.nodes, principal.id)  # its tasks could run nowhere else
        placement = backfill.place_reservation(request.gpu_count, request.node_count, request.gpu_type, usable)
        if placement is None:
            free = sorted(
                (backfill.free_on(n).gpu for n in usable if request.gpu_type is None or n.gpu_type == request.gpu_type),
                reverse=True,
            )
            raise ConflictError(
                f"not enough GPU capacity: {request.node_count} worker(s) with {request.gpu_count} free GPUs each "
                f"requested; free GPUs per worker now: {free}",
                details={"gpu_count": request.gpu_count, "node_count": request.node_count, "free_per_worker": free},
            )
        reservation_id = str(uuid.uuid4())
        expires = now + timedelta(minutes=request.expires_minutes)
        reservation = ReservationRecord(
            f"RESERVATION#{reservation_id}",
            gsi1sk=f"{now_iso(now)}#{reservation_id}",
            reservation_id=reservation_id,
            user_id=actor.user_id or "",
            gpu_count=request.gpu_count,
            gpu_type=request.gpu_type,
            node_count=request.node_count,
            created_at=now_iso(now),
            expires_at=now_iso(expires),
            expires_at_epoch=int(expires.timestamp()),
            status="active",
            workers=placement,
        )
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.save(reservation, condition=ReservationRecord.pk.does_not_exist())
                transaction.save(ledger)  # conditional on the version read
                for worker_id in placement:  # no lease landed on these workers since the snapshot
                    worker = state.workers[worker_id]
                    transaction.condition_check(
                        WorkerRecord, worker.pk, worker.sk, condition=WorkerRecord.version == worker.version
                    )
        except TransactWriteError:
            continue
        audit.append_event(
            "job_queued",
            actor,
            resource=f"reservation/{reservation_id}",
            action="reserve",
            metadata={
                "gpu_count": request.gpu_count,
                "node_count": request.node_count,
                "gpu_type": request.gpu_type,
                "workers": placement,
            },
        )
        return reservation
    raise ConflictError("reservations are changing concurrently; try again")


def find(reservation_id: str) -> ReservationRecord | None:
    return get_or_none(ReservationRecord, f"RESERVATION#{reservation_id}", META, consistent_read=True)


def usable_by(reservation_id: str, user_id: str | None, gpu: int, node_count: int) -> ReservationRecord:
    """The live reservation a new task names, checked against its submitter and shape."""
    reservation = find(reservation_id)
    if reservation is None or reservation.status not in LIVE or reservation.expires_at_epoch <= time.time():
        raise NotFoundError(f"reservation {reservation_id} not found or no longer live")
    if reservation.user_id != user_id:
        raise ForbiddenError("this reservation belongs to another user")
    if gpu > int(reservation.gpu_count) or node_count > int(reservation.node_count):
        raise ValidationError(
            f"the task needs {node_count} × {gpu} GPUs; reservation {reservation_id} holds "
            f"{int(reservation.node_count)} × {int(reservation.gpu_count)}",
            param="reservation_id",
        )
    return reservation


def release(reservation_id: str, principal: Principal, actor: Actor) -> None:
    """End a reservation early: its GPUs go back to everyone at once."""
    reservation = find(reservation_id)
    if reservation is None or not (principal.is_admin or reservation.user_id == principal.id):
        raise NotFoundError(f"reservation {reservation_id} not found")
    if reservation.status not in LIVE or reservation.expires_at_epoch <= time.time():
        raise ConflictError(f"reservation {reservation_id} has already ended")
    try:
        reservation.update(
            actions=[ReservationRecord.status.set("released")], condition=ReservationRecord.status.is_in(*LIVE)
        )
    except UpdateError:
        raise ConflictError(f"reservation {reservation_id} has already ended") from None
    audit.append_event("job_completed", actor, resource=f"reservation/{reservation_id}", action="release")


def reservation_body(reservation: ReservationRecord) -> dict[str, Any]:
    status = reservation.status
    if status in LIVE and reservation.expires_at_epoch <= time.time():
        status = "expired"
    return without_none(
        {
            "id": reservation.reservation_id,
            "user_id": reservation.user_id,
            "gpu_count": int(reservation.gpu_count),
            "gpu_type": reservation.gpu_type,
            "node_count": int(reservation.node_count),
            "expires_at": reservation.expires_at,
            "status": status,
        }
    )
