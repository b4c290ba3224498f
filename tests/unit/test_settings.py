"""One validated settings model: defaults, parsing, and failing the Lambda init when a variable is
missing or malformed (instead of a request later, or silently running as `local`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from aiplane.settings import Settings

LAYER_PATH = os.pathsep.join(path for path in sys.path if path.endswith(("layers/python", "shared")))


def test_defaults_and_derived_values():
    settings = Settings.model_validate(
        {"AIPLANE_ENV": "dev", "AWS_REGION": "eu-west-1", "POWERTOOLS_TRACE_DISABLED": "false"}
    )
    assert (settings.environment, settings.resource_prefix, settings.region) == ("dev", "aiplane-dev", "eu-west-1")
    assert settings.tracing_enabled and settings.appproxy_allow_unauthorized_conf
    assert Settings.model_validate({}).environment == "local"


def test_a_malformed_variable_is_refused_with_its_name():
    with pytest.raises(ValidationError, match="AIPLANE_INLINE_BODY_MAX_BYTES"):
        Settings.model_validate({"AIPLANE_INLINE_BODY_MAX_BYTES": "four megabytes"})
    with pytest.raises(ValidationError, match="AIPLANE_REQUEST_BUDGET_S"):
        Settings.model_validate({"AIPLANE_REQUEST_BUDGET_S": "-1"})


def _import_on_lambda(**variables: str) -> subprocess.CompletedProcess:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": LAYER_PATH,
        "AWS_LAMBDA_FUNCTION_NAME": "aiplane-dev-x",
        **variables,
    }
    return subprocess.run(
        [sys.executable, "-c", "import aiplane.settings"], env=environment, capture_output=True, text=True, timeout=60
    )


def test_on_lambda_a_missing_variable_fails_the_import_naming_it():
    failed = _import_on_lambda(AIPLANE_RESOURCE_PREFIX="aiplane-dev", AIPLANE_ACCOUNT_ID="123456789012")
    assert failed.returncode != 0 and "missing on Lambda: AIPLANE_ENV" in failed.stderr
    assert (
        _import_on_lambda(
            AIPLANE_ENV="dev", AIPLANE_RESOURCE_PREFIX="aiplane-dev", AIPLANE_ACCOUNT_ID="123456789012"
        ).returncode
        == 0
    )
