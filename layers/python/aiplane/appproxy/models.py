"""PynamoDB models of the app proxy coordinator, all in the appproxy table.

Key layout:
- worker   pk WORKER#<id>        sk META              gsi1 WORKERS / <authority>
- slot     pk WORKER#<id>        sk SLOT#PORT#<port> | SLOT#SUB#<subdomain>
- circuit  pk CIRCUIT#<id>       sk META              gsi1 WORKER#<worker id> / <created>#<id>
                                                      gsi2 SESSIONAPP#<session>#<app> / <created> (interactive reuse)

A worker's id is derived from its authority, so a conditional put of the worker item is the
uniqueness check. A slot item exists only while a circuit holds it; creating it with a
condition is what keeps two circuits off one port or subdomain.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from aiplane.data.models import Gsi1, Gsi2, string_list, table_meta
from aiplane_shared import resources

WORKERS_PARTITION = "WORKERS"
META = "META"
SLOT_PREFIX = "SLOT#"


def worker_key(worker_id: str) -> str:
    return f"WORKER#{worker_id}"


def circuit_key(circuit_id: str) -> str:
    return f"CIRCUIT#{circuit_id}"


def port_slot_key(port: int) -> str:
    return f"{SLOT_PREFIX}PORT#{port:05d}"


def subdomain_slot_key(subdomain: str) -> str:
    return f"{SLOT_PREFIX}SUB#{subdomain}"


def session_app_key(session_id: str, app: str) -> str:
    return f"SESSIONAPP#{session_id}#{app}"


class AppproxyItem(Model):
    Meta = table_meta(resources.APPPROXY_TABLE)
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class WorkerRecord(AppproxyItem):
    """An app-proxy worker, registered by `authority`; `nodes` counts its registered nodes."""

    sk = UnicodeAttribute(range_key=True, default=META)
    gsi1pk = UnicodeAttribute(default=WORKERS_PARTITION)
    gsi1sk = UnicodeAttribute()  # authority
    by_authority = Gsi1()
    worker_id = UnicodeAttribute()
    authority = UnicodeAttribute()
    frontend_mode = UnicodeAttribute()
    protocol = UnicodeAttribute()
    hostname = UnicodeAttribute()
    use_tls = BooleanAttribute()  # tls_listen or tls_advertised
    tls_listen = BooleanAttribute(default=False)
    tls_advertised = BooleanAttribute(default=False)
    api_port = NumberAttribute()
    port_range = JSONAttribute(null=True)  # [first, last], inclusive
    wildcard_domain = UnicodeAttribute(null=True)
    wildcard_traffic_port = NumberAttribute(null=True)
    filtered_apps_only = BooleanAttribute()
    traefik_last_used_marker_path = UnicodeAttribute(null=True)
    accepted_traffics = string_list()
    app_filters = JSONAttribute(default=list)
    available_slots = NumberAttribute()  # -1: unbounded (wildcard)
    occupied_slots = NumberAttribute(default=0)
    nodes = NumberAttribute(default=1)
    last_heartbeat_epoch = NumberAttribute()
    lost = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class SlotRecord(AppproxyItem):
    """A port or subdomain of a worker held by a circuit."""

    # pk WORKER#<id>, sk SLOT#...
    worker_id = UnicodeAttribute()
    frontend_mode = UnicodeAttribute()
    port = NumberAttribute(null=True)
    subdomain = UnicodeAttribute(null=True)
    circuit_id = UnicodeAttribute()


class CircuitRecord(AppproxyItem):
    """A circuit: an app (interactive) or an endpoint (inference) served by one worker slot."""

    sk = UnicodeAttribute(range_key=True, default=META)
    gsi1pk = UnicodeAttribute()  # WORKER#<worker id>
    gsi1sk = UnicodeAttribute()  # <created_at>#<id>
    by_worker = Gsi1()
    gsi2pk = UnicodeAttribute(null=True)  # SESSIONAPP#<session>#<app>, interactive only
    gsi2sk = UnicodeAttribute(null=True)
    by_session_app = Gsi2()
    circuit_id = UnicodeAttribute()
    app = UnicodeAttribute(default="")
    protocol = UnicodeAttribute()
    worker_id = UnicodeAttribute()
    app_mode = UnicodeAttribute()
    frontend_mode = UnicodeAttribute()
    envs = JSONAttribute(default=dict)
    arguments = UnicodeAttribute(null=True)
    open_to_public = BooleanAttribute(default=False)
    allowed_client_ips = UnicodeAttribute(null=True)
    port = NumberAttribute(null=True)
    subdomain = UnicodeAttribute(null=True)
    user_id = UnicodeAttribute(null=True)
    endpoint_id = UnicodeAttribute(null=True)
    runtime_variant = UnicodeAttribute(null=True)
    health_check = JSONAttribute(null=True)  # the endpoint's HealthCheckConfig; None: routes are not probed
    route_info = JSONAttribute(default=list)
    session_ids = string_list(default=list)
    requests = NumberAttribute(default=0)
    last_access = NumberAttribute(null=True)  # epoch seconds
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
