"""Open WebSocket connections (API Gateway connection ids).

One item per connection in the websocket-connections table: `pk = CONN#<id>`, and
`gsi1pk = LISTENER#<family>#<user id>` so a user's connections are one Query. Items expire with
API Gateway's 2-hour connection limit (TTL); `$disconnect` and a GoneException delete them sooner.
"""

from __future__ import annotations

import time

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from aiplane.data.models import Gsi1, get_or_none, table_meta
from aiplane.identity.principal import Principal
from aiplane_shared import resources
from aiplane_shared.resources import WEBSOCKET_CONNECTION_HOURS


class ConnectionRecord(Model):
    Meta = table_meta(resources.WEBSOCKET_CONNECTIONS_TABLE)
    pk = UnicodeAttribute(hash_key=True)  # CONN#<connection id>
    sk = UnicodeAttribute(range_key=True, default="META")
    gsi1pk = UnicodeAttribute()  # LISTENER#<family>#<user id>
    gsi1sk = UnicodeAttribute()  # connection id
    by_listener = Gsi1()
    connection_id = UnicodeAttribute()
    family = UnicodeAttribute()
    user_id = UnicodeAttribute()
    subscribed = BooleanAttribute(default=False)
    connected_at = NumberAttribute()
    expires_at_epoch = NumberAttribute()

    @staticmethod
    def key(connection_id: str) -> str:
        return f"CONN#{connection_id}"

    @staticmethod
    def listener_key(family: str, user_id: str) -> str:
        return f"LISTENER#{family}#{user_id}"


def connect(family: str, principal: Principal, connection_id: str) -> ConnectionRecord:
    moment = int(time.time())
    record = ConnectionRecord(
        ConnectionRecord.key(connection_id),
        gsi1pk=ConnectionRecord.listener_key(family, principal.id),
        gsi1sk=connection_id,
        connection_id=connection_id,
        family=family,
        user_id=principal.id,
        connected_at=moment,
        expires_at_epoch=moment + WEBSOCKET_CONNECTION_HOURS * 3600,
    )
    record.save()
    return record


def find(connection_id: str) -> ConnectionRecord | None:
    return get_or_none(ConnectionRecord, ConnectionRecord.key(connection_id), "META")


def disconnect(connection_id: str) -> None:
    ConnectionRecord(ConnectionRecord.key(connection_id), "META").delete()


def subscribe(record: ConnectionRecord) -> None:
    record.update(actions=[ConnectionRecord.subscribed.set(True)])


def listeners(family: str, user_id: str, *, subscribers_only: bool) -> list[ConnectionRecord]:
    now = int(time.time())
    return [
        record
        for record in ConnectionRecord.by_listener.query(ConnectionRecord.listener_key(family, user_id))
        if record.expires_at_epoch > now and (record.subscribed or not subscribers_only)
    ]
