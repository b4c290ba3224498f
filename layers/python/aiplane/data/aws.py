"""boto3 clients, created once per process.

The endpoint comes from the environment (`AWS_ENDPOINT_URL`): unset in the cloud, the embedded
moto server locally. Product code never branches on which one it is.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from aiplane.settings import get_settings

CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    return boto3.client(service, region_name=get_settings().region, config=CLIENT_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests that swap the AWS endpoint call this)."""
    client.cache_clear()
