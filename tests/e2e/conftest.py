"""End-to-end harness: the local HTTP server (every family, as `make run` mounts them) on a free
loopback port, in this process, over the session's embedded stack (moto and the local wiring)."""

from __future__ import annotations

import threading
import time

import pytest
import uvicorn
from aws_lambda_powertools.utilities import parameters

from aiplane_local.provision import publish_api_urls
from aiplane_local.stack import free_port
from tests.local_stack import admin_api_key, family_clients, local_stack, manager_token, worker_token

REGION = "us-east-1"


@pytest.fixture(scope="module")
def api_base(local_stack):
    from aiplane_local.server import BackgroundServer

    server = BackgroundServer()
    base = server.base_url
    publish_api_urls(local_stack.provisioned.prefix, REGION, base)
    parameters.clear_caches()  # a provisioner that ran earlier in the session cached the old URL
    yield base
    server.stop()


def wait_for(condition, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
