"""One botocore session for every AWS client, and one DynamoDB client for all of PynamoDB."""

from __future__ import annotations

import botocore.session
from pynamodb.connection import Connection

from aiplane.data import aws, secrets
from aiplane.data.models import ApiKeyRecord
from aiplane.gpufarm.records import GpuContractRecord


def test_every_pynamodb_connection_uses_one_client():
    first = ApiKeyRecord._get_connection().connection.client
    assert GpuContractRecord._get_connection().connection.client is first
    assert Connection(region="us-east-1").client is first  # those made for transactions too
    assert type(first._serializer).__name__ == "JSONSerializer"  # no parameter validation, as PynamoDB configures it


def test_boto3_pynamodb_and_powertools_clients_come_from_one_botocore_session(monkeypatch):
    created = []
    original = botocore.session.Session.__init__

    def counted(self, *args, **kwargs):
        created.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counted)
    aws.reset_clients()
    secrets._provider.cache_clear()
    try:
        aws.client("sqs"), aws.client("s3")
        ApiKeyRecord._get_connection().connection.client  # noqa: B018
        GpuContractRecord._get_connection().connection.client  # noqa: B018
        Connection(region="us-east-1").client  # noqa: B018
        assert secrets._provider().client is aws.client("secretsmanager")
        assert len(created) == 1
    finally:
        aws.reset_clients()
        secrets._provider.cache_clear()


def test_tracing_patches_only_botocore_at_init(monkeypatch):
    """PynamoDB calls are botocore calls: patching pynamodb too recorded each one twice."""
    from aws_lambda_powertools import Tracer

    from aiplane import observability

    seen = {}
    monkeypatch.setattr(Tracer, "__init__", lambda self, **kwargs: seen.update(kwargs))
    monkeypatch.setattr(observability, "get_settings", lambda: type("S", (), {"tracing_enabled": True})())
    observability.tracer.cache_clear()
    try:
        observability.tracer()
    finally:
        observability.tracer.cache_clear()
    assert tuple(seen["patch_modules"]) == ("botocore",)  # httpx: when an outbound client is built


def test_tracing_patches_httpx_when_the_first_outbound_client_is_built(monkeypatch):
    """Functions that never call out keep httpx (and X-Ray's patch of it) out of their init."""
    import aws_xray_sdk.core

    from aiplane import observability, outbound, outbound_policy

    patched = []
    monkeypatch.setattr(aws_xray_sdk.core, "patch", patched.append)
    monkeypatch.setattr(observability, "tracer", lambda: object())
    observability.trace_http_clients.cache_clear()
    try:
        outbound.client(outbound_policy.BACKENDS).close()
        outbound.client(outbound_policy.BACKENDS).close()
    finally:
        observability.trace_http_clients.cache_clear()
    assert patched == [["httpx"]]
