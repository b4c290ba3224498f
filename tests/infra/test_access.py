"""One role per function, granted its row of the access table, and the table covers what each
function's code references (read from its source): nothing more is shared."""

from __future__ import annotations

import json

from aiplane.request_counts import COUNTED_FAMILIES
from aiplane_infra.constructs.access import FUNCTION_ACCESS, Capability
from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name
from aiplane_shared.routes import function_name, groups_of
from tests.infra.code_references import aws_services, referenced_resources
from tests.infra.iam import actions_of, function_statements, role_id_of

# The services each capability (beyond the declared resources) stands for.
SERVICE_OF_CAPABILITY = {
    Capability.CHAINS: {"stepfunctions"},
    Capability.PROVIDER_KEYS_READ: {"secretsmanager"},
    Capability.PROVIDER_KEYS_WRITE: {"secretsmanager"},
    Capability.TELEGRAM_TOKENS: {"secretsmanager"},
    Capability.TELEGRAM_TOKENS_READ: {"secretsmanager"},
    Capability.EC2_READ: {"ec2"},
    Capability.EC2_LAUNCH: {"ec2"},
    Capability.EC2_TERMINATE: {"ec2"},
    Capability.API_URL: {"ssm"},
    Capability.ROTATION: {"secretsmanager"},
    Capability.AGENT_CREDENTIALS: {"ssm"},
    Capability.AUDIT_SIGNING: {"kms"},
    Capability.WEBSOCKET_CONNECTIONS: {"apigatewaymanagementapi"},
}
NEEDS_NO_PERMISSION = {"sts"}  # GetCallerIdentity
SERVICE_OF_KIND = {
    resources.Table: "dynamodb",
    resources.Queue: "sqs",
    resources.Secret: "secretsmanager",
    resources.Bucket: "s3",
    resources.EventBus: "events",
}


def _function_names(templates) -> dict[str, tuple[str, str]]:
    """physical function name -> (stack, logical id), over every stack."""
    found = {}
    for stack, template in templates.items():
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items():
            name = function["Properties"].get("FunctionName")
            if isinstance(name, str):
                found[name] = (stack, logical_id)
    return found


def _access_key(prefix: str, name: str) -> str:
    key = name.removeprefix(prefix + "-")
    if key.endswith(f"_{resources.WEBSOCKET_FUNCTION}"):  # one per WebSocket API, the same row
        return resources.WEBSOCKET_FUNCTION
    return "authorizer" if key.endswith("_authorizer") else key


def test_every_function_has_a_role_of_its_own(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    roles = set()
    for name, (stack, _) in _function_names(templates).items():
        assert _access_key(prefix, name) in FUNCTION_ACCESS, name
        role = role_id_of(templates[stack], name)
        if not name.endswith("_authorizer"):  # one authorizer per family stack, the same row
            assert (stack, role) not in roles, name
        roles.add((stack, role))


def test_the_access_table_covers_what_each_function_references():
    for function, access in FUNCTION_ACCESS.items():
        if function == resources.SECRET_ROTATION_FUNCTION:
            continue  # its secrets come by ARN in the rotation event
        declared = set(access.read) | set(access.write)
        missing = referenced_resources(function) - declared
        assert not missing, (function, sorted(definition.name for definition in missing))
        covered = {SERVICE_OF_KIND[type(definition)] for definition in declared} | NEEDS_NO_PERMISSION
        for capability in access.capabilities:
            covered |= SERVICE_OF_CAPABILITY[capability]
        assert aws_services(function) <= covered, (function, aws_services(function) - covered)


def test_no_capability_is_granted_for_a_service_the_code_never_calls():
    """E.g. load balancing and health read contracts (aiplane.gpufarm.contract_states) without
    importing their lifecycle, so they hold no agent-credential (SSM) grant."""
    for function, access in FUNCTION_ACCESS.items():
        for capability in access.capabilities:
            assert SERVICE_OF_CAPABILITY[capability] <= aws_services(function), (function, capability)
    for function in ("gpufarm_loadbalancer", "gpufarm_health"):
        assert Capability.AGENT_CREDENTIALS not in FUNCTION_ACCESS[function].capabilities
        assert resources.PROVISIONING_QUEUE not in FUNCTION_ACCESS[function].write


def test_authorizer_and_chain_step_cannot_write_keys_purge_queues_or_deploy_chains(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    forbidden = {
        "secretsmanager:PutSecretValue",
        "secretsmanager:CreateSecret",
        "sqs:PurgeQueue",
        "states:CreateStateMachine",
        "ec2:RunInstances",
    }
    for family in ("runtime", "appproxy", "mlworker", "gpufarm"):
        actions = actions_of(
            function_statements(templates[f"api-{family}"], physical_name(prefix, f"{family}_authorizer"))
        )
        assert not actions & forbidden
        assert not {
            action
            for action in actions
            if action.startswith("dynamodb:")
            and "Get" not in action
            and action not in ("dynamodb:Query", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem")
        }
    step = actions_of(function_statements(templates["async"], physical_name(prefix, resources.CHAIN_STEP_FUNCTION)))
    assert not step & forbidden


def test_only_the_provisioner_launches_instances_and_nobody_purges_queues(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    launchers = set()
    for name, (stack, _) in _function_names(templates).items():
        actions = actions_of(function_statements(templates[stack], name))
        assert "sqs:PurgeQueue" not in actions, name
        if "ec2:RunInstances" in actions:
            launchers.add(name)
    assert launchers == {physical_name(prefix, resources.PROVISIONING_QUEUE.consumer)}


def test_the_jwt_key_is_written_only_by_the_rotation_function(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    jwt_secret = physical_name(prefix, resources.JWT_SIGNING_SECRET.name)
    writers = set()
    for name, (stack, _) in _function_names(templates).items():
        for statement in function_statements(templates[stack], name):
            actions = {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"])
            if "secretsmanager:PutSecretValue" in actions and jwt_secret in json.dumps(statement["Resource"]):
                writers.add(name)
    assert writers == {physical_name(prefix, resources.SECRET_ROTATION_FUNCTION)}


def test_every_function_of_a_family_counted_across_instances_writes_its_table():
    """aiplane.request_counts adds each app's requests to its family's own table, which it names by
    the family (the code scan above does not see it): every such function must be allowed to write it."""
    for family in COUNTED_FAMILIES:
        table = next(table for table in resources.TABLES if table.name == family)
        for group in groups_of(family):
            assert table in FUNCTION_ACCESS[function_name(family, group)].write, (family, group)
