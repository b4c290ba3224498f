"""One REST API per family: a Lambda per resource group, a REQUEST authorizer, every contract
route as an explicit resource and method, and gateway responses in the family's envelope."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from aiplane.api.envelopes import error_body
from aiplane.errors import AiplaneError, ErrorKind
from aiplane_infra.constructs.functions import FunctionFactory
from aiplane_shared.families import APPPROXY, GPUFARM, MLWORKER, RUNTIME
from aiplane_shared.routes import OPENAPI_PATH, PUBLIC, access_for, extra_routes_of, function_name, groups_of, routes_of

# The header a cached authorizer result is keyed by. runtime accepts a key, a bearer token or a
# cookie, and API Gateway needs every listed source present, so runtime is not cached.
AUTHORIZER_IDENTITY_HEADER = {MLWORKER: "X-API-Key", GPUFARM: "Authorization", APPPROXY: "X-BackendAI-Token", RUNTIME: None}
AUTHORIZER_CACHE = cdk.Duration.minutes(5)
META_GROUP = {RUNTIME: "system", APPPROXY: "health", MLWORKER: "health", GPUFARM: "health"}

GATEWAY_RESPONSES: dict[str, tuple[apigw.ResponseType, ErrorKind]] = {
    "Unauthorized": (apigw.ResponseType.UNAUTHORIZED, ErrorKind.UNAUTHENTICATED),
    "AccessDenied": (apigw.ResponseType.ACCESS_DENIED, ErrorKind.FORBIDDEN),
    # API Gateway's answer for an unknown route
    "UnknownRoute": (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, ErrorKind.NOT_FOUND),
    "Throttled": (apigw.ResponseType.THROTTLED, ErrorKind.RATE_LIMITED),
    "RequestTooLarge": (apigw.ResponseType.REQUEST_TOO_LARGE, ErrorKind.PAYLOAD_TOO_LARGE),  # over 10 MB
    "Default4xx": (apigw.ResponseType.DEFAULT_4_XX, ErrorKind.BAD_REQUEST),
    "Default5xx": (apigw.ResponseType.DEFAULT_5_XX, ErrorKind.INTERNAL),
}
_MESSAGE_MARK, _TRACE_MARK = "@@message@@", "@@trace@@"

BINARY_MEDIA_TYPES = ["multipart/form-data", "*/*"]


def gateway_response_template(family: str, kind: ErrorKind) -> str:
    """The family's envelope as an API Gateway response template (message and request id
    filled in by API Gateway)."""
    body = json.dumps(error_body(family, AiplaneError(_MESSAGE_MARK, kind=kind), _TRACE_MARK))
    return body.replace(f'"{_MESSAGE_MARK}"', "$context.error.messageString").replace(_TRACE_MARK, "$context.requestId")


class FamilyApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, family: str, functions: FunctionFactory) -> None:
        super().__init__(scope, construct_id)
        environment = functions.environment
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=f"{environment.resource_prefix}-{family}",
            description=f"aiplane {family} API (base path /{family})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Uploads (multipart) and downloads (any type) pass through untouched, base64 on the
            # Lambda side (Mangum decodes and encodes it); without this binary bodies are mangled.
            binary_media_types=BINARY_MEDIA_TYPES,
            deploy_options=apigw.StageOptions(
                stage_name=environment.name,
                throttling_rate_limit=environment.throttle_rate_limit,
                throttling_burst_limit=environment.throttle_burst_limit,
                tracing_enabled=environment.tracing,
                metrics_enabled=True,
            ),
        )
        for response_id, (response_type, kind) in GATEWAY_RESPONSES.items():
            self.api.add_gateway_response(
                response_id,
                type=response_type,
                status_code="404" if kind == ErrorKind.NOT_FOUND else None,
                templates={"application/json": gateway_response_template(family, kind)},
            )

        self.functions: dict[str, lambda_.Function] = {}
        for group in groups_of(family):
            name = function_name(family, group)
            handler = functions.make(name, name)
            # One permission per function (not per method) keeps the stack far from CloudFormation's 500-resource limit.
            handler.add_permission(
                "ApiGatewayInvoke",
                principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
                source_arn=self.api.arn_for_execute_api(),
            )
            self.functions[group] = handler

        self.authorizer_function = functions.make(f"{family}_authorizer", "authorizer", extra_environment={"AIPLANE_FAMILY": family})
        identity_header = AUTHORIZER_IDENTITY_HEADER[family]
        self.authorizer = apigw.RequestAuthorizer(
            self, "Authorizer",
            authorizer_name=f"{environment.resource_prefix}-{family}-authorizer",
            handler=self.authorizer_function,
            identity_sources=[apigw.IdentitySource.header(identity_header)] if identity_header else [],
            results_cache_ttl=AUTHORIZER_CACHE if identity_header else cdk.Duration.seconds(0),
        )

        routes = [(route.method, route.path, route.group) for route in (*routes_of(family), *extra_routes_of(family))]
        routes.append(("GET", OPENAPI_PATH, META_GROUP[family]))
        for method, path, group in routes:
            public = access_for(family, method, path) == PUBLIC
            self.api.root.resource_for_path(path).add_method(
                method,
                self._integration(self.functions[group]),
                authorizer=None if public else self.authorizer,
                authorization_type=apigw.AuthorizationType.NONE if public else apigw.AuthorizationType.CUSTOM,
            )

    def _integration(self, handler: lambda_.Function) -> apigw.Integration:
        return apigw.Integration(
            type=apigw.IntegrationType.AWS_PROXY,
            integration_http_method="POST",
            uri=f"arn:{cdk.Aws.PARTITION}:apigateway:{cdk.Aws.REGION}:lambda:path/2015-03-31/functions/{handler.function_arn}/invocations",
        )
