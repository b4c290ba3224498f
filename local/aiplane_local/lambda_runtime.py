"""Run Lambda handlers in-process, as the Lambda service would run them."""

from __future__ import annotations

import importlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiplane_shared.environments import get_environment

ACCOUNT_ID = get_environment("local").account


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_s: int = 30
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    region: str = "us-east-1"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def logical_function_name(name_or_arn: str, resource_prefix: str) -> str:
    """`arn:...:function:aiplane-local-runtime_backends` or its name → `runtime_backends`."""
    name = name_or_arn.split(":function:")[-1].split(":")[0]
    return name.removeprefix(f"{resource_prefix}-")


def load_handler(function: str) -> Any:
    return importlib.import_module(f"functions.{function}.handler").handler


def invoke(function: str, event: dict[str, Any]) -> Any:
    return load_handler(function)(event, LocalLambdaContext(function_name=function))
