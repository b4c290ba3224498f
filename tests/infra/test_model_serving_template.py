"""The gpufarm gpu function presigns the artifact GETs agents load models from: it may read model artifacts,
never write or delete them (uploads and deletions stay with the models function)."""

from __future__ import annotations

import json

from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name
from tests.infra.iam import actions_of, function_statements


def test_the_gpu_api_reads_but_never_writes_the_artifacts(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    statements = function_statements(templates["api-gpufarm"], physical_name(prefix, "gpufarm_gpu"))
    on_artifacts = [
        statement
        for statement in statements
        if resources.ARTIFACT_BUCKET.name in json.dumps(statement.get("Resource", ""))
    ]
    assert "s3:GetObject" in actions_of(on_artifacts)
    assert not {"s3:PutObject", "s3:DeleteObject"} & actions_of(on_artifacts)
