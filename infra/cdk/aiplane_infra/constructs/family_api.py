"""One REST API per family: a Lambda per resource group, a REQUEST authorizer, every contract
route as an explicit resource and method, and gateway responses in the family's envelope."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from aiplane.api.envelopes import error_body
from aiplane.errors import AiplaneError, ErrorKind
from aiplane_infra.constructs.functions import FunctionFactory, log_retention
from aiplane_shared.environments import BUFFERED_ROUTE_TIMEOUT_S, STREAMING_ROUTE_TIMEOUT_S, Environment
from aiplane_shared.families import APPPROXY, GPUFARM, MLWORKER, RUNTIME
from aiplane_shared.payloads import LAMBDA_BODY_MAX_BYTES
from aiplane_shared.routes import OPENAPI_PATH, PUBLIC, access_for, extra_routes_of, function_name, groups_of, routes_of

# The header a cached authorizer result is keyed by. runtime accepts a key, a bearer token or a
# cookie, gpufarm a bearer token or a key (AIServe.Farm's CLI sends X-API-Key), and appproxy
# X-BackendAI-Token or a bearer JWT (Backend.AI's forms), and API Gateway needs every listed source
# present, so those three are not cached.
AUTHORIZER_IDENTITY_HEADER = {MLWORKER: "X-API-Key", GPUFARM: None, APPPROXY: None, RUNTIME: None}
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
# A body over what the Lambda invoke takes (LAMBDA_BODY_MAX_BYTES) but under API Gateway's 10 MB:
# API Gateway answers it itself, 413 with this message, through DEFAULT_4XX; that template gives
# it the payload envelope. With the WAF, the BodyOverLambdaLimit rule refuses it before that.
LAMBDA_REFUSAL_MESSAGE = "Request Too Long"
TOO_LARGE_MESSAGE = (
    f"request bodies over {LAMBDA_BODY_MAX_BYTES} bytes cannot pass through the API; send large files "
    "with the upload routes' presigned S3 form (a JSON announcement of the size)"
)

BINARY_MEDIA_TYPES = ["multipart/form-data", "*/*"]


def gateway_response_template(family: str, kind: ErrorKind) -> str:
    """The family's envelope as an API Gateway response template (message and request id
    filled in by API Gateway)."""
    body = json.dumps(error_body(family, AiplaneError(_MESSAGE_MARK, kind=kind), _TRACE_MARK))
    template = body.replace(f'"{_MESSAGE_MARK}"', "$context.error.messageString").replace(
        _TRACE_MARK, "$context.requestId"
    )
    if kind == ErrorKind.BAD_REQUEST:  # the DEFAULT_4XX fallback also carries the Lambda invoke's size refusal
        too_large = json.dumps(
            error_body(family, AiplaneError(TOO_LARGE_MESSAGE, kind=ErrorKind.PAYLOAD_TOO_LARGE), _TRACE_MARK)
        )
        template = (
            f'#if($context.error.messageString.contains("{LAMBDA_REFUSAL_MESSAGE}"))'
            f"{too_large.replace(_TRACE_MARK, '$context.requestId')}#{{else}}{template}#end"
        )
    return template


def too_large_body(family: str) -> str:
    """The family's 413 envelope as a static body (WAF custom responses have no request id)."""
    return json.dumps(error_body(family, AiplaneError(TOO_LARGE_MESSAGE, kind=ErrorKind.PAYLOAD_TOO_LARGE), "waf"))


def integer_above(limit: int) -> str:
    """A regular expression matching exactly the decimal integers greater than `limit` (WAF cannot
    compare a header's value as a number)."""
    digits = str(limit)
    branches = [f"[1-9][0-9]{{{len(digits)},}}"]  # more digits
    for position, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - position - 1
            higher = f"[{int(digit) + 1}-9]" if digit != "8" else "9"
            branches.append(digits[:position] + higher + ({1: "[0-9]"}.get(rest, f"[0-9]{{{rest}}}") if rest else ""))
    return "^0*(" + "|".join(branches) + ")$"


class FamilyApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, family: str, functions: FunctionFactory) -> None:
        super().__init__(scope, construct_id)
        environment = functions.environment
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{environment.resource_prefix}-{family}",
            description=f"aiplane {family} API (base path /{family})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Uploads (multipart) and downloads (any type) pass through untouched, base64 on the
            # Lambda side (Mangum decodes and encodes it); without this binary bodies are mangled.
            binary_media_types=BINARY_MEDIA_TYPES,
            cloud_watch_role=False,  # the account's API Gateway logging role is the data stack's
            deploy_options=apigw.StageOptions(
                stage_name=environment.name,
                throttling_rate_limit=environment.throttle_rate_limit,
                throttling_burst_limit=environment.throttle_burst_limit,
                tracing_enabled=environment.tracing,
                metrics_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(
                    logs.LogGroup(
                        self,
                        "AccessLogs",
                        log_group_name=f"/aws/apigateway/{environment.resource_prefix}-{family}/access",
                        retention=log_retention(environment),
                        removal_policy=cdk.RemovalPolicy.DESTROY,
                    )
                ),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                # Execution logs (errors only: INFO would log every request twice); needs the account's
                # CloudWatch role, which the data stack sets.
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request and response bodies carry credentials and prompts
            ),
        )
        if environment.waf:
            self.web_acl = web_acl(self, environment, family)
            wafv2.CfnWebACLAssociation(
                self,
                "WafAssociation",
                resource_arn=self.api.deployment_stage.stage_arn,
                web_acl_arn=self.web_acl.attr_arn,
            )
        for response_id, (response_type, kind) in GATEWAY_RESPONSES.items():
            self.api.add_gateway_response(
                response_id,
                type=response_type,
                status_code="404" if kind == ErrorKind.NOT_FOUND else None,
                templates={"application/json": gateway_response_template(family, kind)},
                response_headers={"X-Content-Type-Options": "'nosniff'"},  # as every Lambda answer says
            )

        self.functions: dict[str, lambda_.Function] = {}
        self.aliases: dict[str, lambda_.Alias] = {}
        streaming_groups = {route.group for route in (*routes_of(family), *extra_routes_of(family)) if route.streams}
        for group in groups_of(family):
            name = function_name(family, group)
            handler = functions.make(
                name, name, streams=(family, group) if group in streaming_groups else None, snap_start=True
            )
            alias = functions.live_alias(handler)
            # One permission per function (not per method) keeps the stack far from CloudFormation's 500-resource limit.
            alias.add_permission(
                "ApiGatewayInvoke",
                principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
                source_arn=self.api.arn_for_execute_api(),
            )
            self.functions[group] = handler
            self.aliases[group] = alias

        self.authorizer_function = functions.make(
            f"{family}_authorizer", "authorizer", extra_environment={"AIPLANE_FAMILY": family}, snap_start=True
        )
        identity_header = AUTHORIZER_IDENTITY_HEADER[family]
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "Authorizer",
            authorizer_name=f"{environment.resource_prefix}-{family}-authorizer",
            handler=functions.live_alias(self.authorizer_function),
            identity_sources=[apigw.IdentitySource.header(identity_header)] if identity_header else [],
            results_cache_ttl=AUTHORIZER_CACHE if identity_header else cdk.Duration.seconds(0),
        )

        routes = [
            (route.method, route.path, route.group, route.streams)
            for route in (*routes_of(family), *extra_routes_of(family))
        ]
        routes.append(("GET", OPENAPI_PATH, META_GROUP[family], False))
        for method, path, group, streams in routes:
            public = access_for(family, method, path) == PUBLIC
            self.api.root.resource_for_path(path).add_method(
                method,
                route_integration(
                    self.aliases[group], function_streams=group in streaming_groups, route_streams=streams
                ),
                authorizer=None if public else self.authorizer,
                authorization_type=apigw.AuthorizationType.NONE if public else apigw.AuthorizationType.CUSTOM,
            )


def route_integration(alias: lambda_.Alias, *, function_streams: bool, route_streams: bool) -> apigw.Integration:
    """A function under the Lambda Web Adapter answers in Lambda's streaming format, so each of its
    routes is a STREAM integration (response-streaming invocation); only the streaming routes get
    the 15 minutes, the rest keep the buffered 29 s (the app answers 504 before either)."""
    if function_streams:
        api_version, action, mode = "2021-11-15", "response-streaming-invocations", apigw.ResponseTransferMode.STREAM
    else:
        api_version, action, mode = "2015-03-31", "invocations", apigw.ResponseTransferMode.BUFFERED
    return apigw.Integration(
        type=apigw.IntegrationType.AWS_PROXY,
        integration_http_method="POST",
        uri=f"arn:{cdk.Aws.PARTITION}:apigateway:{cdk.Aws.REGION}:lambda:path/{api_version}/functions/{alias.function_arn}/{action}",
        options=apigw.IntegrationOptions(
            response_transfer_mode=mode,
            timeout=cdk.Duration.seconds(STREAMING_ROUTE_TIMEOUT_S if route_streams else BUFFERED_ROUTE_TIMEOUT_S),
        ),
    )


# AWS managed rule groups in front of the API. The common rule set's body size rule would refuse
# every body over 8 KB (uploads, long chats): it only counts; the app enforces the contract's limits.
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
COUNTED_RULES = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}


def web_acl(scope: Construct, environment: Environment, family: str) -> wafv2.CfnWebACL:
    def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
        return wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
        )

    too_large_key = "payload_too_large"
    rules = [
        wafv2.CfnWebACL.RuleProperty(
            name="BodyOverLambdaLimit",
            priority=0,  # before any other rule: the answer is the family's 413
            action=wafv2.CfnWebACL.RuleActionProperty(
                block=wafv2.CfnWebACL.BlockActionProperty(
                    custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                        response_code=413, custom_response_body_key=too_large_key
                    )
                )
            ),
            statement=wafv2.CfnWebACL.StatementProperty(
                regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                    field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(single_header={"Name": "content-length"}),
                    regex_string=integer_above(LAMBDA_BODY_MAX_BYTES),
                    text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                )
            ),
            visibility_config=visibility("BodyOverLambdaLimit"),
        )
    ]
    rules += [
        wafv2.CfnWebACL.RuleProperty(
            name=group,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS",
                    name=group,
                    rule_action_overrides=[
                        wafv2.CfnWebACL.RuleActionOverrideProperty(
                            name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                        )
                        for rule in COUNTED_RULES.get(group, ())
                    ]
                    or None,
                )
            ),
            visibility_config=visibility(group),
        )
        for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1)
    ]
    rules.append(
        wafv2.CfnWebACL.RuleProperty(
            name="RatePerIp",
            priority=len(rules),
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=environment.waf_rate_limit_per_5min, aggregate_key_type="IP"
                )
            ),
            visibility_config=visibility("RatePerIp"),
        )
    )
    return wafv2.CfnWebACL(
        scope,
        "WebAcl",
        name=f"{environment.resource_prefix}-{family}",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=visibility(f"{environment.resource_prefix}-{family}"),
        rules=rules,
        custom_response_bodies={
            too_large_key: wafv2.CfnWebACL.CustomResponseBodyProperty(
                content_type="APPLICATION_JSON", content=too_large_body(family)
            )
        },
    )
