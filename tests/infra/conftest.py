"""Synthesize each deployable environment once per test session (offline, no docker)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "cdk"))

aws_cdk = pytest.importorskip("aws_cdk", reason="the [infra] extra is not installed")

from aws_cdk.assertions import Template  # noqa: E402

from aiplane_infra.app import build_environment  # noqa: E402
from aiplane_shared.environments import get_environment  # noqa: E402


@pytest.fixture(scope="session", params=["dev", "prod"])
def environment_templates(request) -> tuple[str, dict[str, Template]]:
    app = aws_cdk.App()
    stacks = build_environment(app, get_environment(request.param))
    return request.param, {name: Template.from_stack(stack) for name, stack in stacks.items()}
