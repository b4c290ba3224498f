"""The CDK templates hold every function, route, table, queue, DLQ, bus, rule and secret that the
code uses, with the settings the shared definitions give them."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Match

from aiplane_infra.constructs.functions import streaming_runtime
from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.families import FAMILIES
from aiplane_shared.resources import physical_name
from aiplane_shared.routes import OPENAPI_PATH, PUBLIC, access_for, extra_routes_of, function_name, groups_of, routes_of
from tests.infra.iam import actions_of, function_actions, function_statements

REPO_ROOT = Path(__file__).resolve().parents[2]
CLOUDFORMATION_RESOURCE_LIMIT = 500


def prefix_of(env_name: str) -> str:
    return get_environment(env_name).resource_prefix


def test_every_table_with_keys_indexes_and_ttl(environment_templates):
    env_name, templates = environment_templates
    data = templates["data"]
    for table in resources.TABLES:
        data.has_resource_properties(
            "AWS::DynamoDB::Table",
            {
                "TableName": physical_name(prefix_of(env_name), table.name),
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "TimeToLiveSpecification": {"AttributeName": table.ttl_attribute, "Enabled": True},
                "GlobalSecondaryIndexes": Match.array_with(
                    [Match.object_like({"IndexName": index.name}) for index in table.indexes]
                ),
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": env_name == "prod"},
            },
        )


def test_every_queue_has_its_dlq_and_redrive(environment_templates):
    env_name, templates = environment_templates
    messaging = templates["async"]
    for queue in resources.QUEUES:
        messaging.has_resource_properties(
            "AWS::SQS::Queue", {"QueueName": physical_name(prefix_of(env_name), queue.dlq_name)}
        )
        messaging.has_resource_properties(
            "AWS::SQS::Queue",
            {
                "QueueName": physical_name(prefix_of(env_name), queue.name),
                "VisibilityTimeout": queue.visibility_timeout_s,
                "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": queue.max_receive_count},
            },
        )
        if queue.consumer:
            messaging.has_resource_properties(
                "AWS::Lambda::EventSourceMapping", {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
            )


def test_event_bus_and_schedule_rules_target_queues(environment_templates):
    env_name, templates = environment_templates
    messaging = templates["async"]
    for bus in resources.EVENT_BUSES:
        messaging.has_resource_properties(
            "AWS::Events::EventBus", {"Name": physical_name(prefix_of(env_name), bus.name)}
        )
    for schedule in resources.SCHEDULES:
        messaging.has_resource_properties(
            "AWS::Events::Rule",
            {
                "Name": physical_name(prefix_of(env_name), schedule.name),
                "ScheduleExpression": schedule.schedule_expression,
            },
        )


def test_every_secret_is_generated(environment_templates):
    env_name, templates = environment_templates
    for secret in resources.SECRETS:
        templates["data"].has_resource_properties(
            "AWS::SecretsManager::Secret",
            {
                "Name": physical_name(prefix_of(env_name), secret.name),
                "GenerateSecretString": Match.any_value(),
            },
        )


def test_every_resource_group_is_a_function_with_its_handler(environment_templates):
    env_name, templates = environment_templates
    for family in FAMILIES:
        api = templates[f"api-{family}"]
        streaming_groups = {route.group for route in routes_of(family) if route.streams}
        for group in groups_of(family):
            name = function_name(family, group)
            assert (REPO_ROOT / "functions" / name / "handler.py").is_file()
            handler = (
                streaming_runtime(family, group)[0]
                if group in streaming_groups
                else f"functions.{name}.handler.handler"
            )
            api.has_resource_properties(
                "AWS::Lambda::Function",
                {
                    "FunctionName": physical_name(prefix_of(env_name), name),
                    "Handler": handler,
                    "Runtime": "python3.12",
                    "Layers": Match.any_value(),
                    "Environment": {"Variables": Match.object_like({"AIPLANE_RESOURCE_PREFIX": prefix_of(env_name)})},
                },
            )
        api.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": "functions.authorizer.handler.handler",
                "Environment": {"Variables": Match.object_like({"AIPLANE_FAMILY": family})},
            },
        )
        api.has_resource_properties("AWS::ApiGateway::Authorizer", {"Type": "REQUEST"})


def _method_paths(template) -> dict[tuple[str, str], str]:
    """(HTTP method, full path) -> AuthorizationType, rebuilt from the resource tree."""
    api_resources = template.find_resources("AWS::ApiGateway::Resource")

    def path_of(logical_id: str) -> str:
        properties = api_resources[logical_id]["Properties"]
        parent = properties["ParentId"]
        prefix = path_of(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{properties['PathPart']}"

    methods = {}
    for method in template.find_resources("AWS::ApiGateway::Method").values():
        properties = method["Properties"]
        resource = properties["ResourceId"]
        path = path_of(resource["Ref"]) if "Ref" in resource else "/"
        methods[(properties["HttpMethod"], path)] = properties["AuthorizationType"]
    return methods


def test_every_contract_route_is_a_method_with_the_right_auth(environment_templates):
    _, templates = environment_templates
    for family in FAMILIES:
        methods = _method_paths(templates[f"api-{family}"])
        expected = {
            (route.method, route.path): route.access for route in (*routes_of(family), *extra_routes_of(family))
        }
        expected[("GET", OPENAPI_PATH)] = access_for(family, "GET", OPENAPI_PATH)
        assert set(methods) == set(expected), family
        for key, access in expected.items():
            assert methods[key] == ("NONE" if access == PUBLIC else "CUSTOM"), (family, key)


def test_gateway_errors_answer_in_the_family_envelope(environment_templates):
    _, templates = environment_templates
    templates["api-mlworker"].has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "UNAUTHORIZED",
            "ResponseTemplates": {
                "application/json": Match.string_like_regexp(
                    '"code": "UNAUTHORIZED".*"trace_id": "\\$context.requestId"'
                )
            },
            "ResponseParameters": {"gatewayresponse.header.X-Content-Type-Options": "'nosniff'"},
        },
    )
    templates["api-runtime"].has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "MISSING_AUTHENTICATION_TOKEN",
            "StatusCode": "404",
            "ResponseTemplates": {
                "application/json": Match.string_like_regexp('"message": \\$context.error.messageString')
            },
        },
    )
    templates["api-gpufarm"].has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "REQUEST_TOO_LARGE",
            "ResponseTemplates": {"application/json": Match.string_like_regexp('"code": "QUOTA_EXCEEDED"')},
        },
    )


def test_every_stack_stays_under_the_cloudformation_resource_limit(environment_templates):
    _, templates = environment_templates
    for name, template in templates.items():
        assert len(template.to_json()["Resources"]) < CLOUDFORMATION_RESOURCE_LIMIT, name


def test_gpu_fleet_launch_template_instance_profile_and_state_change_rule(environment_templates):
    env_name, templates = environment_templates
    prefix = prefix_of(env_name)
    messaging = templates["async"]
    name = physical_name(prefix, resources.GPU_LAUNCH_TEMPLATE.name)
    messaging.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateName": name,
            "LaunchTemplateData": Match.object_like(
                {
                    "ImageId": Match.string_like_regexp("^resolve:ssm:/aws/service/deeplearning/"),
                    "IamInstanceProfile": {"Arn": Match.any_value()},
                    # Containers (tasks) one hop further get no instance-role credentials, hence no contract credential.
                    "MetadataOptions": Match.object_like({"HttpTokens": "required", "HttpPutResponseHopLimit": 1}),
                }
            ),
        },
    )
    messaging.has_resource_properties("AWS::IAM::InstanceProfile", {"InstanceProfileName": name})
    messaging.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": name,
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]}
            ),
        },
    )
    for rule in resources.EVENT_RULES:
        messaging.has_resource_properties(
            "AWS::Events::Rule",
            {
                "Name": physical_name(prefix, rule.name),
                "EventPattern": rule.event_pattern,
                "Targets": [Match.object_like({"Arn": Match.any_value()})],
            },
        )
    messaging.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": physical_name(prefix, resources.PROVISIONING_QUEUE.consumer),
            "Handler": f"functions.{resources.PROVISIONING_QUEUE.consumer}.handler.handler",
        },
    )


def test_provisioner_and_gpu_api_may_launch_terminate_and_pass_the_instance_role(environment_templates):
    env_name, templates = environment_templates
    prefix = prefix_of(env_name)
    provisioner = function_actions(templates["async"], physical_name(prefix, resources.PROVISIONING_QUEUE.consumer))
    assert {
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeSpotPriceHistory",
        "iam:PassRole",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "iam:CreateServiceLinkedRole",
    } <= provisioner
    gpu_api = function_statements(templates["api-gpufarm"], physical_name(prefix, "gpufarm_gpu"))
    assert {"ec2:TerminateInstances", "ec2:DescribeInstanceTypes"} <= actions_of(gpu_api)
    assert "ec2:RunInstances" not in actions_of(gpu_api)  # DELETE terminates; only the provisioner launches
    assert {"StringEquals": {"aws:ResourceTag/aiplane:environment": env_name}} in [
        statement.get("Condition") for statement in gpu_api if statement["Action"] == "ec2:TerminateInstances"
    ]
    templates["api-gpufarm"].has_resource_properties(
        "AWS::SSM::Parameter", {"Name": resources.api_url_parameter(prefix_of(env_name), "gpufarm")}
    )


def test_an_instance_reads_only_its_own_agent_credential_and_the_functions_manage_them(environment_templates):
    env_name, templates = environment_templates
    parameters = f"parameter{resources.agent_credential_parameter(prefix_of(env_name))}*"
    own_only = Match.object_like(
        {
            "Action": "ssm:GetParameter",
            "Condition": {"StringEquals": {"ssm:resourceTag/aiplane:instance-arn": "${ec2:SourceInstanceARN}"}},
        }
    )
    templates["async"].has_resource_properties(
        "AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([own_only])}}
    )
    # The provisioner publishes them; DELETE and the provisioner (state changes) delete them.
    for stack, function in (("async", "gpufarm_provisioner"), ("api-gpufarm", "gpufarm_gpu")):
        statements = [
            statement
            for statement in function_statements(templates[stack], physical_name(prefix_of(env_name), function))
            if statement["Action"] == ["ssm:PutParameter", "ssm:AddTagsToResource", "ssm:DeleteParameter"]
        ]
        assert statements and all(parameters in json.dumps(statement["Resource"]) for statement in statements), function


def test_gpu_agent_artifact_is_an_asset_published_for_the_provisioner_and_the_instance_reads_only_it(
    environment_stacks, environment_templates
):
    env_name, stacks = environment_stacks
    _, templates = environment_templates
    fleet = stacks["async"].node.find_child("GpuFleet")
    asset = fleet.agent_artifact
    assert asset.is_zip_archive and asset.asset_path  # staged by synth: built from this repo's agent/
    templates["async"].has_resource_properties(
        "AWS::SSM::Parameter",
        {"Name": resources.agent_artifact_parameter(prefix_of(env_name)), "Value": Match.any_value()},
    )
    role_name = physical_name(prefix_of(env_name), resources.GPU_LAUNCH_TEMPLATE.name)
    role = next(
        resource
        for resource in templates["async"].find_resources("AWS::IAM::Role").values()
        if resource["Properties"].get("RoleName") == role_name
    )
    assert "ManagedPolicyArns" not in role["Properties"]
    role_id = next(
        logical
        for logical, resource in templates["async"].find_resources("AWS::IAM::Role").items()
        if resource is role or resource["Properties"].get("RoleName") == role_name
    )
    statements = [
        statement
        for policy in templates["async"].find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert sorted(statement["Action"] for statement in statements) == ["s3:GetObject", "ssm:GetParameter"]
    s3_read = next(statement for statement in statements if statement["Action"] == "s3:GetObject")
    assert ".zip" in json.dumps(s3_read["Resource"])  # the artifact object, not a prefix or the bucket


def test_functions_that_call_agents_sit_in_the_fleet_vpc_whose_agent_group_admits_only_them(environment_templates):
    env_name, templates = environment_templates
    prefix = prefix_of(env_name)
    data = templates["data"]
    groups = data.find_resources("AWS::EC2::SecurityGroup")
    callers = next(
        logical
        for logical, group in groups.items()
        if group["Properties"]["GroupName"] == physical_name(prefix, "gpu-agent-callers")
    )
    agents = next(
        logical
        for logical, group in groups.items()
        if group["Properties"]["GroupName"] == physical_name(prefix, "gpu-agents")
    )
    assert (
        "SecurityGroupIngress" not in groups[agents]["Properties"]
        and "SecurityGroupIngress" not in groups[callers]["Properties"]
    )
    ingress = [
        {name: value for name, value in rule["Properties"].items() if name != "Description"}
        for rule in data.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [agents, "GroupId"]}
    ]
    assert ingress == [
        {
            "IpProtocol": "tcp",
            "FromPort": 8787,
            "ToPort": 8787,
            "GroupId": {"Fn::GetAtt": [agents, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [callers, "GroupId"]},
        }
    ]
    data.has_resource_properties("AWS::SSM::Parameter", {"Name": resources.agent_network_parameter(prefix)})
    data.resource_count_is("AWS::EC2::FlowLog", len(data.find_resources("AWS::EC2::VPC")))  # every VPC logs its flows
    api = templates["api-gpufarm"]
    in_vpc = {
        function["Properties"]["FunctionName"]: function["Properties"].get("VpcConfig")
        for function in api.find_resources("AWS::Lambda::Function").values()
    }
    for name in resources.AGENT_CALLER_FUNCTIONS:
        config = in_vpc[physical_name(prefix, name)]
        assert config and len(config["SecurityGroupIds"]) == 1 and callers in json.dumps(config["SecurityGroupIds"]), (
            name
        )
    assert all(
        config is None
        for name, config in in_vpc.items()
        if name.removeprefix(f"{prefix}-") not in resources.AGENT_CALLER_FUNCTIONS
    )
