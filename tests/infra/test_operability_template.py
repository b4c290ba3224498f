"""Failures are visible: alarms on every DLQ, every function's errors and throttles and every
API's 5xx rate; API access and execution logs; chains log to CloudWatch Logs; WAF where the
environment asks for it; rotation for the secrets aiplane owns; global names that cannot collide;
visibility timeouts six times the consumer's."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_infra.constructs.access import ROTATED_SECRETS
from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.families import FAMILIES
from aiplane_shared.resources import VISIBILITY_PER_CONSUMER_TIMEOUT, physical_name
from tests.infra.iam import function_resource


def _function_names(templates) -> list[str]:
    """Ours (CDK's own custom-resource providers have no fixed name)."""
    return [
        function["Properties"]["FunctionName"]
        for template in templates.values()
        for function in template.find_resources("AWS::Lambda::Function").values()
        if "FunctionName" in function["Properties"]
    ]


def test_alarms_watch_every_dlq_function_and_api(environment_templates):
    env_name, templates = environment_templates
    environment = get_environment(env_name)
    alarms = templates["monitoring"].find_resources("AWS::CloudWatch::Alarm")
    watched = {
        (alarm["Properties"]["MetricName"], next(iter(alarm["Properties"]["Dimensions"]))["Value"])
        for alarm in alarms.values()
    }
    for queue in resources.QUEUES:
        assert (
            "ApproximateNumberOfMessagesVisible",
            physical_name(environment.resource_prefix, queue.dlq_name),
        ) in watched
    for name in _function_names(templates):
        assert {("Errors", name), ("Throttles", name)} <= watched, name
    for family in FAMILIES:
        templates["monitoring"].has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": "5XXError",
                "Namespace": "AWS/ApiGateway",
                "Statistic": "Average",
                "Threshold": environment.alarm_api_5xx_rate,
                "Dimensions": Match.array_with(
                    [{"Name": "ApiName", "Value": f"{environment.resource_prefix}-{family}"}]
                ),
            },
        )
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"], alarm  # every alarm notifies the topic
    templates["monitoring"].has_resource_properties(
        "AWS::SNS::Topic", {"TopicName": physical_name(environment.resource_prefix, "alarms")}
    )


def test_api_stages_write_access_and_execution_logs_and_waf_follows_the_setting(environment_templates):
    env_name, templates = environment_templates
    environment = get_environment(env_name)
    templates["data"].resource_count_is("AWS::ApiGateway::Account", 1)  # the account's logging role, set once
    for family in FAMILIES:
        api = templates[f"api-{family}"]
        api.has_resource_properties(
            "AWS::ApiGateway::Stage",
            {
                "AccessLogSetting": {
                    "DestinationArn": Match.any_value(),
                    "Format": Match.string_like_regexp("requestId"),
                },
                "MethodSettings": Match.array_with(
                    [Match.object_like({"LoggingLevel": "ERROR", "DataTraceEnabled": False})]
                ),
            },
        )
        api.resource_count_is("AWS::ApiGateway::Account", 0)
        api.resource_count_is("AWS::WAFv2::WebACL", 1 if environment.waf else 0)
        api.resource_count_is("AWS::WAFv2::WebACLAssociation", 1 if environment.waf else 0)
        if environment.waf:
            api.has_resource_properties(
                "AWS::WAFv2::WebACL",
                {
                    "Scope": "REGIONAL",
                    "Rules": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Statement": {
                                        "RateBasedStatement": {
                                            "Limit": environment.waf_rate_limit_per_5min,
                                            "AggregateKeyType": "IP",
                                        }
                                    }
                                }
                            ),
                        ]
                    ),
                },
            )


def test_chain_state_machines_log_to_cloudwatch(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    templates["async"].has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": resources.chain_log_group(prefix)}
    )
    templates["async"].has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "EXPRESS",
            "LoggingConfiguration": {
                "Level": "ERROR",
                "IncludeExecutionData": False,
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": Match.any_value()}}],
            },
        },
    )


def test_jwt_and_admin_keys_rotate(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    data = templates["data"]
    secrets = data.find_resources("AWS::SecretsManager::Secret")
    rotation_id, _ = function_resource(data, physical_name(prefix, resources.SECRET_ROTATION_FUNCTION))
    rotated = {
        secrets[schedule["Properties"]["SecretId"]["Ref"]]["Properties"]["Name"]
        for schedule in data.find_resources("AWS::SecretsManager::RotationSchedule").values()
        if schedule["Properties"]["RotationLambdaARN"] == {"Fn::GetAtt": [rotation_id, "Arn"]}
    }
    assert rotated == {physical_name(prefix, secret.name) for secret in ROTATED_SECRETS}


def test_bucket_names_carry_account_and_region(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    for bucket in templates["data"].find_resources("AWS::S3::Bucket").values():
        parts = bucket["Properties"]["BucketName"]["Fn::Join"][1]
        assert (
            parts[0].startswith(f"{prefix}-") and {"Ref": "AWS::AccountId"} in parts and {"Ref": "AWS::Region"} in parts
        )


def test_queue_visibility_is_six_times_the_consumer_timeout(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    messaging = templates["async"]
    for queue in resources.QUEUES:
        _, consumer = function_resource(messaging, physical_name(prefix, queue.consumer))
        timeout = consumer["Properties"]["Timeout"]
        # A queue may set its own: the downloads queue extends a message's visibility while its pull runs.
        explicit = queue.visibility_timeout_s != VISIBILITY_PER_CONSUMER_TIMEOUT * queue.consumer_timeout_s
        assert queue.visibility_timeout_s > timeout
        messaging.has_resource_properties(
            "AWS::SQS::Queue",
            {
                "QueueName": physical_name(prefix, queue.name),
                "VisibilityTimeout": queue.visibility_timeout_s
                if explicit
                else VISIBILITY_PER_CONSUMER_TIMEOUT * timeout,
            },
        )
