"""Open WebSocket connections (API Gateway connection ids) and delivery to them.

One item per connection in the websocket-connections table: `pk = CONN#<id>`, and
`gsi1pk = LISTENER#<family>#<user id>` so a user's connections are one Query. Items expire with
API Gateway's 2-hour connection limit (TTL); `$disconnect` and a GoneException delete them sooner.
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

import boto3
from aiplane_shared import resources
from aiplane_shared.resources import (
    WEBSOCKET_CONNECTION_HOURS,
    websocket_management_parameter,
)
from aws_lambda_powertools.utilities import parameters
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from aiplane.data.aws import CLIENT_CONFIG
from aiplane.data.models import Gsi1, table_name
from aiplane.identity.principal import Principal
from aiplane.observability import logger
from aiplane.settings import get_settings

MANAGEMENT_URL_CACHE_S = 300


class ConnectionRecord(Model):
    class Meta:
        table_name = table_name(resources.WEBSOCKET_CONNECTIONS_TABLE)
        region = get_settings().region

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
        ConnectionRecord.key(connection_id), gsi1pk=ConnectionRecord.listener_key(family, principal.id),
        gsi1sk=connection_id, connection_id=connection_id, family=family, user_id=principal.id, connected_at=moment,
        expires_at_epoch=moment + WEBSOCKET_CONNECTION_HOURS * 3600,
    )
    record.save()
    return record


def find(connection_id: str) -> ConnectionRecord | None:
    try:
        return ConnectionRecord.get(ConnectionRecord.key(connection_id), "META")
    except DoesNotExist:
        return None


def disconnect(connection_id: str) -> None:
    ConnectionRecord(ConnectionRecord.key(connection_id), "META").delete()


def subscribe(record: ConnectionRecord) -> None:
    record.update(actions=[ConnectionRecord.subscribed.set(True)])


def listeners(family: str, user_id: str, *, subscribers_only: bool) -> list[ConnectionRecord]:
    now = int(time.time())
    return [record for record in ConnectionRecord.by_listener.query(ConnectionRecord.listener_key(family, user_id))
            if record.expires_at_epoch > now and (record.subscribed or not subscribers_only)]


@cache
def _management_client(endpoint: str) -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, region_name=get_settings().region,
                        config=CLIENT_CONFIG)


def management_endpoint(family: str) -> str:
    """The family WebSocket API's management endpoint (`https://<api>.execute-api…/<stage>`),
    published in SSM by its API stack (locally by the local server)."""
    return parameters.get_parameter(websocket_management_parameter(get_settings().resource_prefix, family),
                                    max_age=MANAGEMENT_URL_CACHE_S)


def post(record: ConnectionRecord, message: dict[str, Any]) -> bool:
    """PostToConnection; a connection API Gateway no longer holds (GoneException) is forgotten.
    Answers whether the message went out."""
    client = _management_client(management_endpoint(record.family))
    try:
        client.post_to_connection(ConnectionId=record.connection_id, Data=json.dumps(message, default=str).encode())
        return True
    except client.exceptions.GoneException:
        record.delete()
        logger.info("stale WebSocket connection deleted", extra={"connection_id": record.connection_id})
        return False


def deliver(detail: dict[str, Any]) -> int:
    """Post one live update (as `aiplane.live.updates.publish` sends it) to its owner's
    connections; answers how many messages went out."""
    sent = 0
    for record in listeners(detail["family"], detail["user_id"], subscribers_only=bool(detail.get("subscribers_only"))):
        for message in detail["messages"]:
            if not post(record, message):
                break
            sent += 1
    return sent
