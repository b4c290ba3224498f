"""The workers' Redis: Backend.AI's event bus and the traffic counters workers write.

Names and formats as backend.ai-appproxy-common / backend.ai-common 25.13.4 define them:
- circuit events are broadcast (PUBLISH) on `events_all-appproxy`, each message the JSON object
  `{"name", "source", "args"}` where `args` is base64 of the msgpack array of the event's
  serialized arguments: `(target_worker_authority, json(list of circuits))` for
  `appproxy_circuit_created_event` / `appproxy_circuit_removed_event`, and
  `(authority, json(circuit), json(routes))` for `appproxy_circuit_route_updated_event`;
- workers count requests in `circuit.<id>.requests` (INCR) and stamp `circuit.<id>.last_access`
  (epoch seconds) in the live database (db 2).

Publishing is best effort: a Redis outage is logged and never fails the API call (the worker
reads its circuits again from GET /api/worker/{id}/circuits when it restarts).
"""

from __future__ import annotations

import base64
import json
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import msgpack

from aiplane.data.secrets import get_string_secret
from aiplane.observability import logger
from aiplane.snapshots import warm_before_snapshot
from aiplane_shared.resources import APPPROXY_REDIS_SECRET

if TYPE_CHECKING:
    import redis

BROADCAST_CHANNEL = "events_all-appproxy"  # APPPROXY_BROADCAST_CHANNEL
SOURCE = "appproxy-coordinator"  # AGENTID_COORDINATOR
STREAM_DB = 4  # REDIS_STREAM_DB
LIVE_DB = 2  # REDIS_LIVE_DB
CIRCUIT_CREATED = "appproxy_circuit_created_event"
CIRCUIT_ROUTE_UPDATED = "appproxy_circuit_route_updated_event"
CIRCUIT_REMOVED = "appproxy_circuit_removed_event"
TIMEOUT_S = 2.0


def redis_url() -> str:
    """From the `appproxy-redis` secret, JSON {"url": "redis[s]://host:port"}; empty when unset."""
    value = get_string_secret(APPPROXY_REDIS_SECRET.name)
    try:
        return str(json.loads(value).get("url") or "") if value else ""
    except (ValueError, AttributeError):
        return ""


@warm_before_snapshot
@cache
def _redis() -> ModuleType:
    """redis-py, imported when a call first reaches Redis: it costs about 45 ms of init, which
    requests that never publish (reads, listings) need not pay."""
    import redis

    return redis


@cache
def _client(url: str, db: int) -> redis.Redis:
    return _redis().Redis.from_url(url, db=db, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)


def client(db: int) -> redis.Redis | None:
    url = redis_url()
    return _client(url, db) if url else None


def encode_event(name: str, args: tuple[str, ...]) -> bytes:
    """Backend.AI's broadcast payload (MessagePayload.serialize_broadcast)."""
    packed = msgpack.packb(args, use_bin_type=True)
    return json.dumps({"name": name, "source": SOURCE, "args": base64.b64encode(packed).decode("ascii")}).encode()


def decode_event(message: bytes) -> tuple[str, tuple[Any, ...]]:
    body = json.loads(message)
    return body["name"], tuple(msgpack.unpackb(base64.b64decode(body["args"]), raw=False))


def _publish(name: str, args: tuple[str, ...]) -> None:
    bus = client(STREAM_DB)
    if bus is None:
        logger.warning("no appproxy Redis configured: circuit event not published", extra={"event": name})
        return
    try:
        bus.publish(BROADCAST_CHANNEL, encode_event(name, args))
    except _redis().RedisError as error:  # imported: a client exists
        logger.warning("appproxy circuit event not published", extra={"event": name, "error": str(error)})


def circuits_created(authority: str, circuits: list[dict[str, Any]]) -> None:
    _publish(CIRCUIT_CREATED, (authority, json.dumps(circuits)))


def circuits_removed(authority: str, circuits: list[dict[str, Any]]) -> None:
    _publish(CIRCUIT_REMOVED, (authority, json.dumps(circuits)))


def circuit_routes_updated(authority: str, circuit: dict[str, Any], routes: list[dict[str, Any]]) -> None:
    _publish(CIRCUIT_ROUTE_UPDATED, (authority, json.dumps(circuit), json.dumps(routes)))


def traffic(circuit_ids: list[str]) -> dict[str, tuple[int | None, float | None]]:
    """Per circuit, the request count and last access the workers wrote (None where unknown, or
    when Redis cannot be read: idle collection then falls back on the coordinator's own stamps)."""
    live = client(LIVE_DB)
    if live is None or not circuit_ids:
        return {}
    keys = [
        key
        for circuit_id in circuit_ids
        for key in (f"circuit.{circuit_id}.requests", f"circuit.{circuit_id}.last_access")
    ]
    try:
        values = live.mget(keys)
    except _redis().RedisError as error:  # imported: a client exists
        logger.warning("appproxy traffic counters unreadable", extra={"error": str(error)})
        return {}
    found = {}
    for index, circuit_id in enumerate(circuit_ids):
        requests, last_access = values[2 * index], values[2 * index + 1]
        found[circuit_id] = (
            int(requests) if requests is not None else None,
            float(last_access) if last_access is not None else None,
        )
    return found
