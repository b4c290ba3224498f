"""External provider configs (openai, gemini): the API key lives in Secrets Manager, the registry
keeps its type and last characters. Reads are always masked.

A provider's key goes only to its official API host, or to a backend whose URL a principal with
manage on providers set (`BackendRecord.provider_key_granted_by`); never to a URL an editor chose.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiplane.clock import now_iso
from aiplane.data import aws
from aiplane.data.models import get_or_404, get_or_none
from aiplane.errors import ConflictError, ValidationError
from aiplane.gateway import registry, registry_store
from aiplane.gateway.records import PROVIDERS_INDEX_KEY, REGISTRY_PARTITION, BackendRecord, ProviderRecord
from aiplane.gateway.schemas import PROVIDER_TYPES
from aiplane.settings import get_settings

VISIBLE_KEY_CHARACTERS = 4
OFFICIAL_API_HOSTS = {"openai": "api.openai.com", "gemini": "generativelanguage.googleapis.com"}


def secret_name(provider_type: str) -> str:
    return get_settings().resource(f"provider-{provider_type}-api-key")


def check_type(provider_type: str) -> str:
    if provider_type not in PROVIDER_TYPES:
        raise ValidationError(f"provider type must be one of {', '.join(PROVIDER_TYPES)}", param="providerType")
    return provider_type


def get_config(provider_type: str) -> ProviderRecord:
    check_type(provider_type)
    return get_or_404(
        ProviderRecord,
        REGISTRY_PARTITION,
        f"PROVIDER#{provider_type}",
        missing=f"provider {provider_type} is not configured",
    )


def list_configs(limit: int, cursor: str | None) -> list[ProviderRecord]:
    return registry_store.list_page(
        ProviderRecord.by_creation, ProviderRecord.gsi1sk, PROVIDERS_INDEX_KEY, limit, cursor
    )


def configure(provider_type: str, api_key: str, *, upsert: bool) -> ProviderRecord:
    check_type(provider_type)
    api_key = api_key.strip()
    if not api_key:
        raise ValidationError("apiKey must not be blank", param="apiKey")
    existing = get_or_none(ProviderRecord, REGISTRY_PARTITION, f"PROVIDER#{provider_type}")
    if existing is not None and not upsert:
        raise ConflictError(f"provider {provider_type} is already configured; send upsert: true to replace its key")
    name = secret_name(provider_type)
    secrets = aws.client("secretsmanager")
    try:
        secrets.put_secret_value(SecretId=name, SecretString=api_key)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=name, SecretString=api_key, Description=f"aiplane {provider_type} provider API key")
    stamp = now_iso()
    record = ProviderRecord(
        REGISTRY_PARTITION,
        f"PROVIDER#{provider_type}",
        gsi1sk=existing.created_at if existing else stamp,
        type=provider_type,
        secret_name=name,
        key_suffix=api_key[-VISIBLE_KEY_CHARACTERS:],
        created_at=existing.created_at if existing else stamp,
        updated_at=stamp,
    )
    record.save()
    registry.invalidate()
    return record


def delete_config(provider_type: str) -> None:
    record = get_config(provider_type)
    secrets = aws.client("secretsmanager")
    try:
        secrets.delete_secret(SecretId=record.secret_name, ForceDeleteWithoutRecovery=True)
    except secrets.exceptions.ResourceNotFoundException:
        pass
    record.delete()
    registry.invalidate()


# (secret name, updated_at) -> key: a reconfigure changes updated_at, so stale keys are never used.
_key_cache: dict[tuple[str, str], str] = {}


def api_key_of(record: ProviderRecord | None) -> str | None:
    """The clear key, for calls to the provider only (never returned by the API)."""
    if record is None:
        return None
    cache_key = (record.secret_name, record.updated_at)
    if cache_key not in _key_cache:
        secrets = aws.client("secretsmanager")
        try:
            _key_cache[cache_key] = secrets.get_secret_value(SecretId=record.secret_name)["SecretString"]
        except secrets.exceptions.ResourceNotFoundException:
            return None
    return _key_cache[cache_key]


def is_official_api(provider_type: str, base_url: str) -> bool:
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        return False
    return parts.scheme == "https" and parts.hostname == OFFICIAL_API_HOSTS.get(provider_type) and port in (None, 443)


def api_key_for(backend: BackendRecord, record: ProviderRecord | None) -> str | None:
    """The provider key to send to this backend, or None when its URL may not receive it."""
    if is_official_api(backend.type, backend.base_url) or backend.provider_key_granted_by:
        return api_key_of(record)
    return None
