"""A real uvicorn server (the local server's root app) on a free loopback port, for WebSocket
clients, and the live-updates queue drained into the sender the way its event source mapping runs it."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import boto3
import pytest
import uvicorn
from aws_lambda_powertools.utilities import parameters

from aiplane.identity.api_keys import issue_api_key
from aiplane.identity.users import create_user
from aiplane.settings import get_settings
from aiplane_local.provision import publish_websocket_endpoints
from aiplane_local.stack import free_port
from aiplane_shared import resources


@pytest.fixture(scope="session")
def live_server(local_stack):
    from aiplane_local.server import BackgroundServer

    server = BackgroundServer(ws="websockets-sansio")
    publish_websocket_endpoints(get_settings().resource_prefix, get_settings().region, server.base_url)
    parameters.clear_caches()
    yield server.base_url.replace("http://", "ws://")
    server.stop()


class LiveUpdatesQueue:
    def __init__(self, local_stack) -> None:
        self.stack = local_stack
        self.sqs = boto3.client("sqs", region_name=get_settings().region)
        self.url = local_stack.provisioned.queue_urls[resources.LIVE_UPDATES_QUEUE.name]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def run_sender(self, rounds: int = 50) -> None:
        """Hand what is on the queue to the sender until it is empty."""
        for _ in range(rounds):
            if not self.stack.dispatchers.deliver_once(self.sqs, resources.LIVE_UPDATES_QUEUE, self.url, self.arn):
                return


@pytest.fixture
def live_updates(local_stack) -> LiveUpdatesQueue:
    return LiveUpdatesQueue(local_stack)


@dataclass(frozen=True)
class User:
    user_id: str
    api_key: str


def new_user(family: str) -> User:
    user = create_user(f"ws-{uuid.uuid4().hex[:8]}@example.com", "Correct-Horse-Battery-9", families=[family])
    return User(user.user_id, issue_api_key(user.user_id, "ws").api_key)
