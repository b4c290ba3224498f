"""Fair share by recent usage, the way Slurm's classic fair-share factor works.

Every task that ends charges its user `gpu × node_count × seconds held`. Usage decays with a
half-life H (`mlworker_fairshare_half_life_h`): U(t) = U(t0) · 2^(-(t - t0) / H). Among the n users
with queued work, each with an equal share S = 1/n, the factor of user u is

    F(u) = 2^(-(U(u) / ΣU) / S)

(1 for everyone when nobody has usage; 0.5 for a user with exactly their share; towards 0 for a
heavy user). Tasks of equal effective priority level run in descending F, then FIFO.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from pynamodb.exceptions import PutError

from aiplane.data.models import get_or_none
from aiplane.mlworker.models import META, TaskRecord, UsageRecord
from aiplane.settings import get_settings
from aiplane_shared.environments import get_environment

SAVE_ATTEMPTS = 20


def usage_key(user_id: str) -> str:
    return f"USAGE#{user_id}"


def half_life_s() -> float:
    return get_environment(get_settings().environment).mlworker_fairshare_half_life_h * 3600


def decayed(gpu_seconds: float, since_epoch: float, now_epoch: float, half_life: float) -> float:
    return gpu_seconds * 2 ** (-max(0.0, now_epoch - since_epoch) / half_life)


def factor(usage: float, total: float, users: int) -> float:
    if total <= 0 or users <= 0:
        return 1.0
    return 2 ** (-(usage / total) * users)


def factors_of(usages: dict[str, float]) -> dict[str, float]:
    total = sum(usages.values())
    return {user: factor(value, total, len(usages)) for user, value in usages.items()}


def factors(users: Iterable[str], now: datetime) -> dict[str, float]:
    """The fair-share factor of each user (one BatchGet for all of them)."""
    users = sorted(set(users))
    if not users:
        return {}
    now_epoch, half_life = now.timestamp(), half_life_s()
    usages = dict.fromkeys(users, 0.0)
    for record in UsageRecord.batch_get([(usage_key(user), META) for user in users]):
        user = record.pk.removeprefix("USAGE#")
        usages[user] = decayed(float(record.gpu_seconds), float(record.decayed_at_epoch), now_epoch, half_life)
    return factors_of(usages)


def gpu_seconds(task: TaskRecord, now_epoch: float) -> float:
    if task.leased_epoch is None:
        return 0.0
    return int(task.gpu or 0) * int(task.node_count or 1) * max(0.0, now_epoch - float(task.leased_epoch))


def charge(task: TaskRecord, now_epoch: float | None = None) -> None:
    """Add a held task's GPU-seconds to its user's decayed usage."""
    now_epoch = now_epoch or time.time()
    add_usage(task.user_id, gpu_seconds(task, now_epoch), now_epoch)


def add_usage(user_id: str, seconds: float, now_epoch: float) -> None:
    if seconds <= 0:
        return
    half_life = half_life_s()
    for _ in range(SAVE_ATTEMPTS):
        record = get_or_none(UsageRecord, usage_key(user_id), META, consistent_read=True) or UsageRecord(
            usage_key(user_id), META, gpu_seconds=0, decayed_at_epoch=now_epoch
        )
        record.gpu_seconds = (
            decayed(float(record.gpu_seconds), float(record.decayed_at_epoch), now_epoch, half_life) + seconds
        )
        record.decayed_at_epoch = now_epoch
        try:
            record.save()
            return
        except PutError:
            continue
