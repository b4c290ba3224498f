"""Run-time settings, read once from the environment.

The same variables are set by the CDK app on every Lambda and by the local stack on its process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from aiplane_shared.resources import physical_name


@dataclass(frozen=True)
class Settings:
    environment: str
    resource_prefix: str
    region: str
    tracing_enabled: bool
    # Bodies above this travel through S3 presigned URLs: a Lambda payload is 6 MB, base64 included.
    inline_body_max_bytes: int
    # Step Functions state is limited to 256 KB: larger values are kept in S3 and passed by reference.
    state_offload_bytes: int

    def resource(self, name: str) -> str:
        """The physical name of a shared resource (table, queue, bus, secret, bucket)."""
        return physical_name(self.resource_prefix, name)


@cache
def get_settings() -> Settings:
    environment = os.environ.get("AIPLANE_ENV", "local")
    return Settings(
        environment=environment,
        resource_prefix=os.environ.get("AIPLANE_RESOURCE_PREFIX", f"aiplane-{environment}"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        tracing_enabled=os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() not in ("1", "true"),
        inline_body_max_bytes=int(os.environ.get("AIPLANE_INLINE_BODY_MAX_BYTES", 4 * 1024 * 1024)),
        state_offload_bytes=int(os.environ.get("AIPLANE_STATE_OFFLOAD_BYTES", 32 * 1024)),
    )
