"""Secrets Manager reads, cached per process by Powertools' parameters utility."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters

from aiplane.settings import get_settings

SECRET_CACHE_SECONDS = 300


def get_json_secret(name: str) -> dict[str, Any]:
    """A JSON secret by its logical name (`aiplane_shared.resources.Secret.name`)."""
    value = parameters.get_secret(get_settings().resource(name), transform="json", max_age=SECRET_CACHE_SECONDS)
    return value if isinstance(value, dict) else {}


def get_string_secret(name: str) -> str:
    value = parameters.get_secret(get_settings().resource(name), max_age=SECRET_CACHE_SECONDS)
    return value if isinstance(value, str) else ""


def clear_secret_cache() -> None:
    parameters.clear_caches()
