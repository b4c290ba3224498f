"""The app proxy's housekeeping is in the template: each scheduled rule targets its queue, and
the queue feeds its consumer function with partial batch failures."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name

HOUSEKEEPING = (
    (resources.APPPROXY_WORKER_LIVENESS_SCHEDULE, resources.APPPROXY_WORKER_LIVENESS_QUEUE),
    (resources.APPPROXY_IDLE_CIRCUITS_SCHEDULE, resources.APPPROXY_IDLE_CIRCUITS_QUEUE),
)


def test_appproxy_rules_target_their_queues_and_consumers(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    messaging = templates["async"]
    queues = messaging.find_resources("AWS::SQS::Queue")
    for schedule, queue in HOUSEKEEPING:
        assert schedule in resources.SCHEDULES and queue in resources.QUEUES
        assert schedule.target_queue == queue.name
        (queue_logical_id,) = [
            logical_id
            for logical_id, definition in queues.items()
            if definition["Properties"]["QueueName"] == physical_name(prefix, queue.name)
        ]
        messaging.has_resource_properties(
            "AWS::Events::Rule",
            {
                "Name": physical_name(prefix, schedule.name),
                "ScheduleExpression": schedule.schedule_expression,
                "State": "ENABLED",
                "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [queue_logical_id, "Arn"]}})],
            },
        )
        messaging.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "FunctionName": physical_name(prefix, queue.consumer),
                "Handler": f"functions.{queue.consumer}.handler.handler",
            },
        )
        messaging.has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {
                "EventSourceArn": {"Fn::GetAtt": [queue_logical_id, "Arn"]},
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        )
