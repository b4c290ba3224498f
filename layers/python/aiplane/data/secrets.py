"""Secrets Manager reads, cached per process by Powertools' parameters utility (its provider
over our shared client, not one on a session of its own)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aiplane.data.aws import client
from aiplane.settings import get_settings
from aiplane.snapshots import warm_before_snapshot

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

SECRET_CACHE_SECONDS = 300


@warm_before_snapshot
@cache
def _provider() -> SecretsProvider:
    # Made with the first read: the utility and its client cost about 60 ms of init, and most
    # requests (API keys) read no secret.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=client("secretsmanager"))


def get_json_secret(name: str) -> dict[str, Any]:
    """A JSON secret by its logical name (`aiplane_shared.resources.Secret.name`)."""
    value = _provider().get(get_settings().resource(name), transform="json", max_age=SECRET_CACHE_SECONDS)
    return value if isinstance(value, dict) else {}


def get_string_secret(name: str) -> str:
    value = _provider().get(get_settings().resource(name), max_age=SECRET_CACHE_SECONDS)
    return value if isinstance(value, str) else ""


def clear_secret_cache() -> None:
    _provider().clear_cache()
