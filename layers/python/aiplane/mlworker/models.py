"""PynamoDB models of the ML worker family, all in the mlworker table.

Key layout:
- task         pk TASK#<id>        sk META   gsi1 TASKS / <created>#<id>
                                             gsi2 TASKSTATUS#<status> / <status time>#<id>
                                             gsi3 USERTASKS#<user>#<status> / <created>#<id>
                                             gsi4 QUEUE / <aging origin>#<id> (queued tasks only)
- task counts  pk TASKCOUNT#<shard> sk ALL; TASKCOUNT#USER#<user> sk ALL; TASKCOUNT#HOURS sk HOUR#<hour> (counters.py)
- worker       pk WORKER#<id>      sk META   gsi1 WORKERS / <id>
- reservation  pk RESERVATION#<id> sk META   gsi1 RESERVATIONS / <created>#<id>
- ledger       pk RESERVATIONS     sk LEDGER (version bumped by every reservation: serializes them)
- plugin       pk PLUGIN#<name>    sk CONFIG (only plugins whose config was changed)
- audit event  pk AUDIT#<shard>    sk SEQ#<zero-padded sequence>  gsi1 AUDIT / SEQ#<sequence>
                                                                  gsi2 AUDITTIME / <timestamp>#SEQ#<sequence>
- audit head   pk AUDIT#<shard>    sk HEAD   (sequence + hash of the shard's newest event)
- experiment   pk EXPERIMENT#<id>  sk META   gsi1 EXPERIMENTS / <created>#<id>
- jupyter      pk JUPYTER#<id>     sk META   gsi1 JUPYTER / <created>#<id>
- usage        pk USAGE#<user>     sk META   (decayed GPU-seconds: fair share)

The task's gsi2 sort key is the time it entered its status: queue order for queued tasks,
the end time for finished ones (so "completed today" is a key condition). The sparse gsi4 holds
only queued tasks, in aged-priority order (`scheduling.aging_origin`): `GET /v1/queue` reads a page.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from aiplane.data.models import Gsi1, Gsi2, Gsi3, string_list, table_meta, table_name
from aiplane_shared import resources

META = "META"
TASKS_PARTITION = "TASKS"
WORKERS_PARTITION = "WORKERS"
RESERVATIONS_PARTITION = "RESERVATIONS"
EXPERIMENTS_PARTITION = "EXPERIMENTS"
JUPYTER_PARTITION = "JUPYTER"
QUEUE_PARTITION = "QUEUE"  # gsi4: the queued tasks, in aged-priority order
AUDIT_PARTITION = "AUDIT"  # the chain's shards are AUDIT#<n>; every event is in gsi1 AUDIT, in sequence order
AUDIT_TIME_PARTITION = "AUDITTIME"  # gsi2: every event in time order (time-range pages)
TABLE_NAME = table_name(resources.MLWORKER_TABLE)


def task_key(task_id: str) -> str:
    return f"TASK#{task_id}"


def task_status_key(status: str) -> str:
    return f"TASKSTATUS#{status}"


def worker_key(worker_id: str) -> str:
    return f"WORKER#{worker_id}"


def user_status_key(user_id: str, status: str) -> str:
    return f"USERTASKS#{user_id}#{status}"


class Gsi4(GlobalSecondaryIndex):
    """The mlworker table's sparse `gsi4`: the queued tasks in aged-priority order."""

    class Meta:
        index_name = "gsi4"
        projection = AllProjection()

    gsi4pk = UnicodeAttribute(hash_key=True)
    gsi4sk = UnicodeAttribute(range_key=True)


class MlworkerItem(Model):
    Meta = table_meta(resources.MLWORKER_TABLE)
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class TaskRecord(MlworkerItem):
    _persisted_status: str | None  # not stored: the status as last saved (counters), set on first change

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=META)
    gsi1pk = UnicodeAttribute(default=TASKS_PARTITION)
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_created = Gsi1()
    by_status = Gsi2()
    gsi3pk = UnicodeAttribute(null=True)  # kept by tasks.set_status
    gsi3sk = UnicodeAttribute(null=True)
    by_user_status = Gsi3()
    gsi4pk = UnicodeAttribute(null=True)  # QUEUE while queued, else absent (tasks.set_status)
    gsi4sk = UnicodeAttribute(null=True)
    in_queue = Gsi4()
    task_id = UnicodeAttribute()
    job_name = UnicodeAttribute()
    status = UnicodeAttribute()
    priority = NumberAttribute()
    user_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)
    ended_at = UnicodeAttribute(null=True)
    worker_id = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    output = UnicodeAttribute(null=True)
    entrypoint = UnicodeAttribute(null=True)
    args = UnicodeAttribute(null=True)
    snapshot_id = UnicodeAttribute(null=True)
    datasets = string_list(default=list)
    dataset_specs = JSONAttribute(default=list)
    metadata = JSONAttribute(default=dict)
    cpu = NumberAttribute(default=0)
    memory_gb = NumberAttribute(default=0)
    gpu = NumberAttribute(default=0)
    retry_count = NumberAttribute(default=0)
    max_retries = NumberAttribute(default=3)
    lease_expires_epoch = NumberAttribute(null=True)  # while a worker holds the task
    # Fencing: +1 on every lease; renewals and reports must carry the current one (workers.report_state).
    fencing_token = NumberAttribute(default=0)
    exit_code = NumberAttribute(null=True)  # the entrypoint's, as its worker reported it
    log_key = UnicodeAttribute(null=True)  # the full log in the artifacts bucket (task_io)
    # Scheduling (aiplane/mlworker/backfill.py): gpu, cpu and memory_gb are per node.
    node_count = NumberAttribute(default=1)
    reservation_id = UnicodeAttribute(null=True)
    walltime_s = NumberAttribute(null=True)  # None: the environment's default
    preemptible = BooleanAttribute(default=False)
    leased_epoch = NumberAttribute(null=True)  # when the current lease began (walltime counts from it)
    # While leased: [{"node_id": rank, "worker_id", "gpu", "slot_assigned": lease delivered to that worker}]
    node_assignments = JSONAttribute(default=list)
    # {plugin: {"name", "status", "url"?, "last_check"}}: the sidecar health checks its worker reported
    plugin_status = JSONAttribute(default=dict)
    # Every state change, oldest first: [{"seq", "status", "priority", "at", ...}] (the job stream)
    history = JSONAttribute(default=list)
    version = VersionAttribute()  # every save is conditional on the version read


class WorkerRecord(MlworkerItem):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=META)
    gsi1pk = UnicodeAttribute(default=WORKERS_PARTITION)
    gsi1sk = UnicodeAttribute()
    by_list = Gsi1()
    worker_id = UnicodeAttribute()
    connected_at = UnicodeAttribute()
    last_heartbeat = UnicodeAttribute()
    last_heartbeat_epoch = NumberAttribute()
    gpu_count = NumberAttribute(default=0)
    gpu_type = UnicodeAttribute(null=True)
    cpu_cores = NumberAttribute(default=0)
    memory_gb = NumberAttribute(default=0)
    service_slots = NumberAttribute(default=0)
    # {plugin: {"status", "error"?, "url"?, "reported_at", "reported_epoch"}}: what its agent last reported
    plugin_health = JSONAttribute(default=dict)
    active_tasks = string_list(default=list)
    status = UnicodeAttribute(default="active")  # active | draining | offline
    drained = BooleanAttribute(default=False)  # drained by an admin: heartbeats do not revive it
    stop_requests = string_list(default=list)  # taken away (preempted, walltime): the next heartbeat's stop_tasks
    # Tenancy (aiplane/mlworker/tenancy.py): who registered it first, and whether an admin shared it.
    owner_id = UnicodeAttribute(null=True)
    shared = BooleanAttribute(default=False)
    version = VersionAttribute()


class ReservationRecord(MlworkerItem):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=META)
    gsi1pk = UnicodeAttribute(default=RESERVATIONS_PARTITION)
    gsi1sk = UnicodeAttribute()
    by_list = Gsi1()
    reservation_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    gpu_count = NumberAttribute()
    gpu_type = UnicodeAttribute(null=True)
    node_count = NumberAttribute(default=1)
    created_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    expires_at_epoch = NumberAttribute()  # TTL as well: DynamoDB removes it some time after expiry
    status = UnicodeAttribute(default="active")  # active | claimed (a holder's task leased in it) | released
    workers = string_list(default=list)  # where its node_count × gpu_count GPUs are held
    version = VersionAttribute(null=True)


class ReservationLedger(MlworkerItem):
    """One item whose version every reservation bumps in the same transaction, so two
    reservations racing for the last GPUs cannot both pass the capacity check."""

    pk = UnicodeAttribute(hash_key=True, default=RESERVATIONS_PARTITION)
    sk = UnicodeAttribute(range_key=True, default="LEDGER")
    version = VersionAttribute()


class PluginConfigRecord(MlworkerItem):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="CONFIG")
    enabled = BooleanAttribute()
    mode = UnicodeAttribute()
    image = UnicodeAttribute(null=True)
    settings = JSONAttribute(default=dict)
    updated_at = UnicodeAttribute()


class AuditEventRecord(MlworkerItem):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(default=AUDIT_PARTITION)
    gsi1sk = UnicodeAttribute()
    in_sequence = Gsi1()
    gsi2pk = UnicodeAttribute(null=True)  # AUDITTIME (events stored before it: python -m aiplane.mlworker.migrate)
    gsi2sk = UnicodeAttribute(null=True)
    in_time = Gsi2()
    sequence_num = NumberAttribute()
    timestamp = UnicodeAttribute()
    event_type = UnicodeAttribute()
    user_id = UnicodeAttribute(null=True)
    resource = UnicodeAttribute(null=True)
    action = UnicodeAttribute(null=True)
    success = BooleanAttribute(default=True)
    ip_address = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    metadata = JSONAttribute(default=dict)
    prev_hash = UnicodeAttribute()
    event_hash = UnicodeAttribute()

    def chained_fields(self) -> dict[str, Any]:
        """What the audit chain hashes (aiplane.mlworker.audit); with the hash, an event's body."""
        return {
            "sequence_num": int(self.sequence_num),
            "timestamp": self.timestamp,
            "event_type": self.event_type,
            "user_id": self.user_id,
            "resource": self.resource,
            "action": self.action,
            "success": bool(self.success),
            "ip_address": self.ip_address,
            "error": self.error,
            "metadata": self.metadata or {},
            "prev_hash": self.prev_hash,
        }


class AuditHeadRecord(MlworkerItem):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    sequence_num = NumberAttribute()
    event_hash = UnicodeAttribute()
    timestamp = UnicodeAttribute()


class ExperimentRecord(MlworkerItem):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=META)
    gsi1pk = UnicodeAttribute(default=EXPERIMENTS_PARTITION)
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    experiment_id = UnicodeAttribute()
    name = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    commit_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    status = UnicodeAttribute(default="active")


class JupyterServiceRecord(MlworkerItem):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=META)
    gsi1pk = UnicodeAttribute(default=JUPYTER_PARTITION)
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    service_id = UnicodeAttribute()
    name = UnicodeAttribute()
    workspace = UnicodeAttribute(null=True)
    image = UnicodeAttribute()
    status = UnicodeAttribute()  # starting | running | stopping | stopped | error
    url = UnicodeAttribute(null=True)
    token = UnicodeAttribute()
    user_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    worker_id = UnicodeAttribute(null=True)  # the worker that starts (or started) it
    error = UnicodeAttribute(null=True)  # why it could not start (status error)


class UsageRecord(MlworkerItem):
    """A user's recorded GPU usage, decayed to `decayed_at_epoch` (fair share, see `fairshare`)."""

    pk = UnicodeAttribute(hash_key=True)  # USAGE#<user id>
    sk = UnicodeAttribute(range_key=True, default=META)
    gpu_seconds = NumberAttribute(default=0)
    decayed_at_epoch = NumberAttribute(default=0)
    version = VersionAttribute()
