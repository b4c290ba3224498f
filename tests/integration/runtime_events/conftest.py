"""Fixtures for the runtime events area: the admin runtime client, unique names, and the path an
appended event takes to the trigger runner (domain bus rule → SQS queue → consumer)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import boto3
import pytest
from fastapi.testclient import TestClient

from aiplane_shared import resources


@pytest.fixture
def runtime(family_clients) -> TestClient:
    return family_clients["runtime"]


@pytest.fixture
def headers(admin_api_key) -> dict[str, str]:
    return {"X-API-Key": admin_api_key}


@pytest.fixture
def unique() -> Callable[[str], str]:
    return lambda label: f"{label}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def drain_trigger_queue(local_stack) -> Callable[[], int]:
    """Runs the local dispatcher over the event-triggers queue (as `make run` does) until it is
    empty, so every appended event, and every event its functions sent, went through the consumer."""
    queue = resources.EVENT_TRIGGERS_QUEUE
    sqs = boto3.client("sqs", region_name=local_stack.dispatchers.region)
    url = local_stack.provisioned.queue_urls[queue.name]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def drain() -> int:
        delivered = 0
        while batch := local_stack.dispatchers.deliver_once(sqs, queue, url, arn):
            delivered += batch
        return delivered

    return drain
