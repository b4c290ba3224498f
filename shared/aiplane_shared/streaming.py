"""How the functions that serve a streaming route run in the cloud (docs/cloud.md, "Streaming").

Python managed runtimes cannot stream a response from a handler, so these functions run the AWS
Lambda Web Adapter (LWA), a public AWS layer: its `/opt/bootstrap` exec wrapper starts `HANDLER`
(uvicorn serving the function's group app, the same routers `make run` serves) and forwards each
invocation to it over loopback, streaming the answer back (`response_stream` mode). Every route of
such a function answers in Lambda's streaming format, so each gets the STREAM integration.

One place for the CDK app, the entry point (`functions/streaming/`) and the packaged tests.
"""

from __future__ import annotations

from aiplane_shared.families import base_path
from aiplane_shared.routes import STREAMING_ROUTES, function_name, group_for

# arn:aws:lambda:<region>:753240598075:layer:LambdaAdapterLayerX86:<version>, published in every
# commercial region (awslabs/aws-lambda-web-adapter, docs/guide "Zip Packages").
LWA_LAYER_ACCOUNT = "753240598075"
LWA_LAYER_VERSION = 26
HANDLER = "functions/streaming/run.sh"  # relative to the task root; LWA's bootstrap execs it
PORT = 8000  # where uvicorn listens on 127.0.0.1 and LWA forwards to
FUNCTION_VARIABLE = "AIPLANE_FUNCTION"  # which group app run.sh serves, e.g. runtime_exec

# Functions (folders under functions/) that serve at least one streaming route.
STREAMING_FUNCTIONS: frozenset[str] = frozenset(
    function_name(family, group_for(family, path)) for family, _, path in STREAMING_ROUTES
)


def lwa_layer_arn(region: str) -> str:
    """The adapter layer for x86_64 (a CDK region token works too)."""
    return f"arn:aws:lambda:{region}:{LWA_LAYER_ACCOUNT}:layer:LambdaAdapterLayerX86:{LWA_LAYER_VERSION}"


def streaming_environment(family: str, group: str) -> dict[str, str]:
    """The variables a streaming function sets on top of every function's environment."""
    return {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "AWS_LWA_PORT": str(PORT),
        # Ready once uvicorn accepts connections: it binds only after the app is built.
        "AWS_LWA_READINESS_CHECK_PROTOCOL": "tcp",
        # Behind a custom domain the base path mapping keeps /<family> in the path (as Mangum strips it).
        "AWS_LWA_REMOVE_BASE_PATH": base_path(family),
        FUNCTION_VARIABLE: function_name(family, group),
    }
