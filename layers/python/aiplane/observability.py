"""Powertools Logger and (only when tracing is on) Tracer.

Tracer imports aws_xray_sdk, which costs about 250 ms of cold start even with tracing disabled,
so it is created only when the environment enables tracing. It patches only the clients aiplane
uses: botocore (PynamoDB's calls included) and httpx. X-Ray's default patches every supported
library, which imports sqlite3 and others at init and records each DynamoDB call twice (botocore's
and PynamoDB's subsegment).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from aiplane.settings import get_settings

SERVICE = "aiplane"
TRACED_MODULES = ("botocore", "httpx")

logger = Logger(service=SERVICE)


@cache
def tracer() -> Any | None:
    if not get_settings().tracing_enabled:
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE, patch_modules=TRACED_MODULES)
