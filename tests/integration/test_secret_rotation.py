"""The rotation function runs Secrets Manager's four steps against moto: the JWT secret gets a
fresh kid and keeps the previous current one for verification; the admin key is replaced."""

from __future__ import annotations

import json
import uuid

import pytest

from aiplane.data import aws
from aiplane.data.rotation import RotationError, next_signing_keys
from aiplane_shared.resources import ADMIN_API_KEY_SECRET, JWT_SIGNING_SECRET
from functions.secret_rotation.handler import handler

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture()
def prefix(set_setting):
    prefix = f"rotation-{uuid.uuid4().hex[:8]}"  # apart from the session's secrets
    set_setting("AIPLANE_RESOURCE_PREFIX", prefix)
    return prefix


def _rotate(secret_id: str) -> str:
    token = str(uuid.uuid4())
    for step in STEPS:
        handler({"Step": step, "SecretId": secret_id, "ClientRequestToken": token}, None)
    # by stage: moto's default read does not follow a moved AWSCURRENT (AWS does)
    return aws.client("secretsmanager").get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]


def test_jwt_rotation_publishes_the_next_kid_and_keeps_the_previous(prefix):
    secrets = aws.client("secretsmanager")
    arn = secrets.create_secret(
        Name=f"{prefix}-{JWT_SIGNING_SECRET.name}", SecretString=json.dumps({"current": "k1", "k1": "a" * 64})
    )["ARN"]
    first = json.loads(_rotate(arn))
    assert first["current"] == "k1" and first["k1"] == "a" * 64 and len(first["k2"]) == 64
    second = json.loads(_rotate(arn))
    assert second["current"] == "k2" and {"k1", "k2", "k3"} <= set(second)  # tokens signed with k1 still verify
    third = json.loads(_rotate(arn))
    assert third["current"] == "k3" and "k1" not in third and third["k2"] == second["k2"]


def test_admin_key_rotation_replaces_the_key_and_repeating_a_step_changes_nothing(prefix):
    secrets = aws.client("secretsmanager")
    arn = secrets.create_secret(Name=f"{prefix}-{ADMIN_API_KEY_SECRET.name}", SecretString="old-key-" + "x" * 40)["ARN"]
    token = str(uuid.uuid4())
    event = {"SecretId": arn, "ClientRequestToken": token}
    handler({**event, "Step": "createSecret"}, None)
    pending = secrets.get_secret_value(SecretId=arn, VersionStage="AWSPENDING")["SecretString"]
    handler({**event, "Step": "createSecret"}, None)  # Secrets Manager retries steps
    assert secrets.get_secret_value(SecretId=arn, VersionStage="AWSPENDING")["SecretString"] == pending
    for step in STEPS[1:]:
        handler({**event, "Step": step}, None)
    current = secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    assert current == pending and current.isalnum() and len(current) == 40


def test_rotation_refuses_a_secret_it_does_not_own(prefix):
    arn = aws.client("secretsmanager").create_secret(Name=f"{prefix}-appproxy-worker-token", SecretString="t" * 40)[
        "ARN"
    ]
    with pytest.raises(RotationError):
        handler({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": str(uuid.uuid4())}, None)


def test_next_signing_keys_from_the_initial_secret():
    assert next_signing_keys({"current": "k1", "k1": "a"}, "b") == {"current": "k1", "k1": "a", "k2": "b"}
