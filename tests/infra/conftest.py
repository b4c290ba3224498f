"""Synthesize each deployable environment once per test session (offline, no docker), with
cdk-nag's AwsSolutions pack applied to every stack."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "cdk"))

aws_cdk = pytest.importorskip("aws_cdk", reason="the [infra] extra is not installed")

from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from aiplane_infra.app import build_environment  # noqa: E402
from aiplane_shared.environments import get_environment  # noqa: E402


@pytest.fixture(scope="session", params=["dev", "prod"])
def environment_stacks(request) -> tuple[str, dict[str, aws_cdk.Stack]]:
    app = aws_cdk.App()
    stacks = build_environment(app, get_environment(request.param))
    aws_cdk.Aspects.of(app).add(AwsSolutionsChecks())
    return request.param, stacks


@pytest.fixture(scope="session")
def environment_templates(environment_stacks) -> tuple[str, dict[str, Template]]:
    env_name, stacks = environment_stacks
    return env_name, {name: Template.from_stack(stack) for name, stack in stacks.items()}
