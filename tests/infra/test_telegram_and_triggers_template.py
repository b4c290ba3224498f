"""The Telegram poller runs on its schedule and may only read bot tokens; the event-trigger worker
takes one message per invocation, with a timeout that covers one function run."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane.settings import Settings
from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name
from tests.infra.iam import actions_of, function_resource, function_statements


def _queue_id(template, prefix: str, queue: resources.Queue) -> str:
    (logical_id,) = [
        logical_id
        for logical_id, definition in template.find_resources("AWS::SQS::Queue").items()
        if definition["Properties"]["QueueName"] == physical_name(prefix, queue.name)
    ]
    return logical_id


def _worker_fits(template, prefix: str, queue: resources.Queue) -> dict:
    _, function = function_resource(template, physical_name(prefix, queue.consumer))
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [_queue_id(template, prefix, queue), "Arn"]},
            "BatchSize": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    return function["Properties"]


def test_the_event_trigger_worker_runs_one_function_per_invocation_within_its_timeout(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    properties = _worker_fits(templates["async"], prefix, resources.EVENT_TRIGGERS_QUEUE)
    assert properties["Timeout"] == resources.EVENT_TRIGGERS_QUEUE.consumer_timeout_s > Settings().function_timeout_s
    actions = actions_of(
        function_statements(templates["async"], physical_name(prefix, resources.EVENT_TRIGGERS_QUEUE.consumer))
    )
    assert "sqs:SendMessage" in actions  # an event with several triggers fans out, one message per trigger


def test_the_telegram_poller_runs_on_its_schedule_and_only_reads_bot_tokens(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    messaging = templates["async"]
    queue, schedule = resources.TELEGRAM_POLL_QUEUE, resources.TELEGRAM_POLL_SCHEDULE
    messaging.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": physical_name(prefix, schedule.name),
            "ScheduleExpression": "rate(1 minute)",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [_queue_id(messaging, prefix, queue), "Arn"]}})],
        },
    )
    assert _worker_fits(messaging, prefix, queue)["Timeout"] == queue.consumer_timeout_s
    statements = function_statements(messaging, physical_name(prefix, queue.consumer))
    secrets = [
        statement
        for statement in statements
        if any(
            str(a).startswith("secretsmanager:")
            for a in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        )
    ]
    assert actions_of(secrets) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    assert all("telegram-*" in str(statement["Resource"]) for statement in secrets)
    assert "states:StartSyncExecution" in actions_of(statements)
