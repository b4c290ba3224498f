"""The CDK app sets exactly the variables the settings model reads (aiplane.settings), and every
one a deployed function needs."""

from __future__ import annotations

from aiplane.settings import REQUIRED_ON_LAMBDA, VARIABLES
from aiplane_shared.streaming import FUNCTION_VARIABLE

# Read by the entry points themselves, per invocation (see aiplane.settings.VARIABLES), or by libraries.
ENTRY_POINT_VARIABLES = {"AIPLANE_FAMILY", FUNCTION_VARIABLE}
LIBRARY_PREFIXES = ("POWERTOOLS_", "AWS_LWA_", "AWS_LAMBDA_EXEC_WRAPPER")  # Powertools, the Web Adapter


def test_every_function_gets_the_required_variables_and_no_unknown_one(environment_templates):
    _, templates = environment_templates
    seen = 0
    for template in templates.values():
        for function in template.find_resources("AWS::Lambda::Function").values():
            if "FunctionName" not in function["Properties"]:
                continue  # CDK's own custom-resource providers (aiplane names every function it makes)
            variables = set(function["Properties"].get("Environment", {}).get("Variables", {}))
            seen += 1
            assert set(REQUIRED_ON_LAMBDA) <= variables, function["Properties"].get("FunctionName")
            unknown = {
                name for name in variables - VARIABLES - ENTRY_POINT_VARIABLES if not name.startswith(LIBRARY_PREFIXES)
            }
            assert not unknown, (function["Properties"].get("FunctionName"), unknown)
    assert seen > 50
