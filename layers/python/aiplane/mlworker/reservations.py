"""GPU capacity reservations.

A reservation holds `gpu_count × node_count` GPUs (of `gpu_type`, when given) from now until it
expires. It is refused (409) when it would exceed the GPUs of the active workers minus what the
live reservations already hold. Every reservation bumps the ledger item's version in the same
transaction, so two reservations racing for the last GPUs serialize and the loser re-checks.
A non-admin's live reservations may hold at most the environment's
`mlworker_reservation_gpu_hours_per_user` (GPUs × hours until expiry); past it: 403. Reservations
are seen by their owner and by admins.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from aiplane.clock import now_iso
from aiplane.errors import ConflictError, ForbiddenError
from aiplane.identity.principal import Principal
from aiplane.mlworker import audit, workers
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.common import connection, without_none
from aiplane.mlworker.models import RESERVATIONS_PARTITION, ReservationLedger, ReservationRecord
from aiplane.mlworker.schemas import CreateReservationRequest
from aiplane.settings import get_settings
from aiplane_shared.environments import get_environment

SAVE_ATTEMPTS = 20


def _live(now_epoch: float) -> list[ReservationRecord]:
    return [reservation for reservation in ReservationRecord.by_list.query(RESERVATIONS_PARTITION)
            if reservation.status == "active" and reservation.expires_at_epoch > now_epoch]


def list_active() -> list[ReservationRecord]:
    return _live(time.time())


def list_visible(principal: Principal) -> list[ReservationRecord]:
    return [r for r in list_active() if principal.is_admin or r.user_id == principal.id]


def gpu_hours_limit() -> float:
    return get_environment(get_settings().environment).mlworker_reservation_gpu_hours_per_user


def _gpu_hours(gpus: int, seconds: float) -> float:
    return gpus * max(0.0, seconds) / 3600


def _check_user_limit(principal: Principal, live: list[ReservationRecord], wanted_gpu_hours: float, now: float) -> None:
    if principal.is_admin:
        return
    held = sum(_gpu_hours(int(r.gpu_count) * int(r.node_count), r.expires_at_epoch - now)
               for r in live if r.user_id == principal.id)
    limit = gpu_hours_limit()
    if held + wanted_gpu_hours > limit + 1e-9:
        raise ForbiddenError(
            f"reservation limit exceeded: {wanted_gpu_hours:g} GPU-hours requested, {held:g} held, "
            f"at most {limit:g} GPU-hours per user",
        )


def _counts_against(gpu_type: str | None, held_type: str | None) -> bool:
    """An untyped reservation competes with all; a typed one with its type and untyped ones."""
    return gpu_type is None or held_type is None or held_type == gpu_type


def gpu_capacity(gpu_type: str | None) -> int:
    return sum(int(worker.gpu_count) for worker in workers.list_workers()
               if workers.effective_status(worker) == workers.ACTIVE and (gpu_type is None or worker.gpu_type == gpu_type))


def _ledger() -> ReservationLedger:
    try:
        return ReservationLedger.get(RESERVATIONS_PARTITION, "LEDGER", consistent_read=True)
    except DoesNotExist:
        return ReservationLedger()


def create_reservation(request: CreateReservationRequest, principal: Principal, actor: Actor) -> ReservationRecord:
    wanted = request.gpu_count * request.node_count
    for _ in range(SAVE_ATTEMPTS):
        ledger = _ledger()
        now = datetime.now(UTC)
        live = _live(now.timestamp())
        # Checked under the ledger's version like capacity, so one user's racing requests cannot pass together.
        _check_user_limit(principal, live, _gpu_hours(wanted, request.expires_minutes * 60), now.timestamp())
        held = sum(int(r.gpu_count) * int(r.node_count) for r in live
                   if _counts_against(request.gpu_type, r.gpu_type))
        capacity = gpu_capacity(request.gpu_type)
        if held + wanted > capacity:
            raise ConflictError(
                f"not enough GPU capacity: {wanted} requested, {max(0, capacity - held)} of {capacity} unreserved",
                details={"requested": wanted, "capacity": capacity, "reserved": held},
            )
        reservation_id = str(uuid.uuid4())
        expires = now + timedelta(minutes=request.expires_minutes)
        reservation = ReservationRecord(
            f"RESERVATION#{reservation_id}", gsi1sk=f"{now_iso(now)}#{reservation_id}", reservation_id=reservation_id,
            user_id=actor.user_id or "", gpu_count=request.gpu_count, gpu_type=request.gpu_type,
            node_count=request.node_count, created_at=now_iso(now), expires_at=now_iso(expires),
            expires_at_epoch=int(expires.timestamp()), status="active",
        )
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.save(reservation, condition=ReservationRecord.pk.does_not_exist())
                transaction.save(ledger)  # conditional on the version read
        except TransactWriteError:
            continue
        audit.append_event("job_queued", actor, resource=f"reservation/{reservation_id}", action="reserve",
                           metadata={"gpu_count": request.gpu_count, "node_count": request.node_count,
                                     "gpu_type": request.gpu_type})
        return reservation
    raise ConflictError("reservations are changing concurrently; try again")


def reservation_body(reservation: ReservationRecord) -> dict[str, Any]:
    status = reservation.status
    if status == "active" and reservation.expires_at_epoch <= time.time():
        status = "expired"
    return without_none({
        "id": reservation.reservation_id, "user_id": reservation.user_id, "gpu_count": int(reservation.gpu_count),
        "gpu_type": reservation.gpu_type, "node_count": int(reservation.node_count),
        "expires_at": reservation.expires_at, "status": status,
    })
