"""Runtime events infrastructure in the template: the domain bus's pattern rule delivers appended
events to the event-triggers queue, the lease-expiry schedule targets its queue, and both queues
feed their consumers with partial batch failures."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name


def _queue_id(template, prefix: str, queue: resources.Queue) -> str:
    (logical_id,) = [
        logical_id
        for logical_id, definition in template.find_resources("AWS::SQS::Queue").items()
        if definition["Properties"]["QueueName"] == physical_name(prefix, queue.name)
    ]
    return logical_id


def test_event_trigger_rule_and_lease_expiry_schedule(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    messaging = templates["async"]
    rule = resources.EVENT_TRIGGERS_RULE
    triggers_queue = _queue_id(messaging, prefix, resources.EVENT_TRIGGERS_QUEUE)
    (bus_id,) = [
        logical_id
        for logical_id, definition in messaging.find_resources("AWS::Events::EventBus").items()
        if definition["Properties"]["Name"] == physical_name(prefix, resources.DOMAIN_EVENT_BUS.name)
    ]
    messaging.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": physical_name(prefix, rule.name),
            "EventBusName": {"Ref": bus_id},
            "EventPattern": {
                "source": [resources.RUNTIME_EVENT_SOURCE],
                "detail-type": [resources.RUNTIME_EVENT_DETAIL_TYPE],
            },
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [triggers_queue, "Arn"]}})],
        },
    )
    expiry_queue = _queue_id(messaging, prefix, resources.JOB_LEASE_EXPIRY_QUEUE)
    messaging.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": physical_name(prefix, resources.JOB_LEASE_EXPIRY_SCHEDULE.name),
            "ScheduleExpression": resources.JOB_LEASE_EXPIRY_SCHEDULE.schedule_expression,
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [expiry_queue, "Arn"]}})],
        },
    )
    for queue, queue_id in (
        (resources.EVENT_TRIGGERS_QUEUE, triggers_queue),
        (resources.JOB_LEASE_EXPIRY_QUEUE, expiry_queue),
    ):
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
                "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        )
