"""Delivery of live updates to open connections through API Gateway's management API."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters

from aiplane.data.aws import CLIENT_CONFIG
from aiplane.live.connections import ConnectionRecord, listeners
from aiplane.observability import logger
from aiplane.settings import get_settings
from aiplane_shared.resources import websocket_management_parameter

MANAGEMENT_URL_CACHE_S = 300


@cache
def _management_client(endpoint: str) -> Any:
    return boto3.client(
        "apigatewaymanagementapi", endpoint_url=endpoint, region_name=get_settings().region, config=CLIENT_CONFIG
    )


def management_endpoint(family: str) -> str:
    """The family WebSocket API's management endpoint (`https://<api>.execute-api…/<stage>`),
    published in SSM by its API stack (locally by the local server)."""
    return parameters.get_parameter(
        websocket_management_parameter(get_settings().resource_prefix, family), max_age=MANAGEMENT_URL_CACHE_S
    )


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
