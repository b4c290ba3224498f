"""The CDK app: `cdk synth -c env=dev|prod` (all deployable environments when env is unset)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(REPO_ROOT / "layers" / "python"),
    str(REPO_ROOT / "shared"),
    str(REPO_ROOT / "agent"),
]  # the GPU fleet builds the agent artifact

import aws_cdk as cdk  # noqa: E402

from aiplane_infra.app import build_app  # noqa: E402

if __name__ == "__main__":
    app = cdk.App()
    build_app(app, app.node.try_get_context("env"))
    app.synth()
