"""Secrets Manager rotation for the secrets aiplane owns end to end (the four-step protocol:
createSecret, setSecret, testSecret, finishSecret).

- the JWT signing keys `{"current": kid, kid: key, ...}`: each rotation makes the newest kid
  current, publishes a fresh one for the next rotation (so every process has cached it before it
  signs anything) and drops the kids older than the previous current one (tokens it signed keep
  verifying for a whole rotation period, which covers the 30-day refresh tokens);
- the admin API key: a new random key (processes that cached the old one accept it until their
  cache expires, `aiplane.data.secrets.SECRET_CACHE_SECONDS`).

The appproxy tokens and the provider keys are shared with systems outside aiplane and are not
rotated here (README, "Secrets").
"""

from __future__ import annotations

import json
from typing import Any

from aiplane.data import aws
from aiplane.settings import get_settings
from aiplane_shared.resources import ADMIN_API_KEY_SECRET, JWT_SIGNING_SECRET

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
KEY_LENGTH = {JWT_SIGNING_SECRET.name: 64, ADMIN_API_KEY_SECRET.name: 40}


class RotationError(Exception):
    """The rotation request does not fit the secret's state; Secrets Manager retries or reports it."""


def _kid_number(kid: str) -> int:
    return int(kid.lstrip("k"))


def next_signing_keys(keys: dict[str, str], new_key: str) -> dict[str, str]:
    """The JWT secret after one rotation (see the module docstring)."""
    kids = sorted((kid for kid in keys if kid != "current"), key=_kid_number)
    previous = keys["current"]
    fresh = f"k{_kid_number(kids[-1]) + 1}"
    kept = {kid: keys[kid] for kid in kids if _kid_number(kid) >= _kid_number(previous)}
    return {"current": kids[-1], **kept, fresh: new_key}


def _logical_name(secret_arn: str) -> str:
    described = aws.client("secretsmanager").describe_secret(SecretId=secret_arn)
    for name in KEY_LENGTH:
        if described["Name"] == get_settings().resource(name):
            return name
    raise RotationError(f"{described['Name']} is not a secret aiplane rotates")


def rotate(step: str, secret_arn: str, token: str) -> None:
    secrets = aws.client("secretsmanager")
    versions = secrets.describe_secret(SecretId=secret_arn).get("VersionIdsToStages", {})
    if step != "createSecret" and token not in versions:  # createSecret puts the version itself
        raise RotationError(f"version {token} is not staged for rotation")
    if CURRENT in versions.get(token, ()):
        return  # already finished
    if step == "createSecret":
        _create(secret_arn, token)
    elif step == "testSecret":
        _test(secret_arn, token)
    elif step == "finishSecret":
        current = next(version for version, stages in versions.items() if CURRENT in stages)
        secrets.update_secret_version_stage(
            SecretId=secret_arn, VersionStage=CURRENT, MoveToVersionId=token, RemoveFromVersionId=current
        )
    elif step != "setSecret":  # nothing outside Secrets Manager holds these values
        raise RotationError(f"unknown rotation step {step!r}")


def _create(secret_arn: str, token: str) -> None:
    secrets = aws.client("secretsmanager")
    try:
        secrets.get_secret_value(SecretId=secret_arn, VersionId=token, VersionStage=PENDING)
        return  # created by an earlier attempt of this rotation
    except secrets.exceptions.ResourceNotFoundException:
        pass
    name = _logical_name(secret_arn)
    new_key = secrets.get_random_password(PasswordLength=KEY_LENGTH[name], ExcludePunctuation=True)["RandomPassword"]
    value = new_key
    if name == JWT_SIGNING_SECRET.name:
        current = json.loads(secrets.get_secret_value(SecretId=secret_arn, VersionStage=CURRENT)["SecretString"])
        value = json.dumps(next_signing_keys(current, new_key))
    secrets.put_secret_value(SecretId=secret_arn, ClientRequestToken=token, SecretString=value, VersionStages=[PENDING])


def _test(secret_arn: str, token: str) -> None:
    value: Any = aws.client("secretsmanager").get_secret_value(
        SecretId=secret_arn, VersionId=token, VersionStage=PENDING
    )["SecretString"]
    if _logical_name(secret_arn) == JWT_SIGNING_SECRET.name:
        keys = json.loads(value)
        if keys.get(keys.get("current", "")) is None:
            raise RotationError("the pending signing keys have no current key")
    elif len(value) < KEY_LENGTH[ADMIN_API_KEY_SECRET.name]:
        raise RotationError("the pending admin key is too short")
