"""The embedded stack (moto and the local wiring) for the tiers that need AWS, started once per
session when one of their conftests imports this module.

It starts before anything imports boto3 or the domain layer: a boto3 client created before the
endpoint is set would not talk to moto.
"""

from __future__ import annotations

import os

# moto reads this once, at import: EC2 then refuses instance types AWS does not have.
os.environ.setdefault("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")

from aiplane_local.stack import start_local_stack

STACK = start_local_stack(start_dispatchers=False)

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from aiplane_shared.families import FAMILIES  # noqa: E402


@pytest.fixture(scope="session")
def local_stack():
    return STACK


@pytest.fixture(scope="session")
def admin_api_key() -> str:
    return STACK.bootstrap["admin-api-key"]


@pytest.fixture(scope="session")
def manager_token() -> str:
    return STACK.bootstrap["appproxy-manager-token"]


@pytest.fixture(scope="session")
def worker_token() -> str:
    return STACK.bootstrap["appproxy-worker-token"]


@pytest.fixture(scope="session")
def family_clients() -> dict[str, TestClient]:
    """One in-process client per family app, exactly as the local server mounts them."""
    from functions.family_app import build_family_app

    return {family: TestClient(build_family_app(family), raise_server_exceptions=False) for family in FAMILIES}
