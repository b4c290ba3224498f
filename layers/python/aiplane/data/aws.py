"""AWS clients, created once per process from one botocore session.

The endpoint comes from the environment (`AWS_ENDPOINT_URL`): unset in the cloud, the embedded
moto server locally. Product code never branches on which one it is.

One session for everything: a botocore session loads the endpoint rules, each service's model and
the credentials once, and that is most of a client's cost (PynamoDB alone made a new session per
model's connection, 170-350 ms each on a cold start). boto3 clients (`client`), Powertools'
secrets provider (`aiplane.data.secrets`) and every PynamoDB connection use it; PynamoDB's
connections share one DynamoDB client (`share_with_pynamodb`, applied on import).
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from pynamodb.connection.base import Connection

from aiplane.settings import get_settings

CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
# PynamoDB serializes its requests itself, so it skips botocore's parameter validation (as it does by default).
_PYNAMODB_CONFIG = CLIENT_CONFIG.merge(Config(parameter_validation=False))
# Creating clients from one session is not thread-safe (the streaming server runs requests in threads).
_creating = threading.Lock()


@cache
def _session() -> boto3.Session:
    return boto3.Session(botocore_session=botocore.session.get_session(), region_name=get_settings().region)


@cache
def client(service: str) -> Any:
    with _creating:
        return _session().client(service, config=CLIENT_CONFIG)


@cache
def _pynamodb_client() -> Any:
    with _creating:
        return _session().client("dynamodb", config=_PYNAMODB_CONFIG)


BATCH_LIMIT = 10  # SendMessageBatch and PutEvents take at most 10 entries (aiplane.data.publish, event_bus)


class PublishRefused(RuntimeError):
    """SQS or EventBridge refused an entry of a send."""


def _shared_pynamodb_client(_connection: Connection) -> Any:
    shared = _pynamodb_client()
    if shared._request_signer and not shared._request_signer._credentials:
        # As PynamoDB does: a client made while credentials were unavailable would never sign; make it again.
        _pynamodb_client.cache_clear()
        shared = _pynamodb_client()
    return shared


def share_with_pynamodb() -> None:
    """Every PynamoDB connection (each model's and those made for transactions) uses the one
    DynamoDB client. PynamoDB has no setting for it, so its `client` property is replaced. The
    client PynamoDB would make differs only in our timeouts and retries, and in the
    `extra_headers` setting, which aiplane does not use."""
    Connection.client = property(_shared_pynamodb_client)  # type: ignore[assignment,method-assign]


def reset_clients() -> None:
    """Forget cached clients and the session (tests that swap the AWS endpoint call this)."""
    for cached in (client, _pynamodb_client, _session):
        cached.cache_clear()


share_with_pynamodb()
