"""The gateway's asynchronous parts are in the template: the sync tick rule targeting the sync
queue, both queues with DLQs, and their worker functions fed by SQS."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_shared.environments import get_environment
from aiplane_shared.resources import GATEWAY_SYNC_QUEUE, GATEWAY_SYNC_SCHEDULE, MODEL_DOWNLOAD_QUEUE, physical_name


def test_sync_tick_runs_every_minute_into_the_sync_queue(environment_templates):
    env_name, templates = environment_templates
    messaging = templates["async"]
    prefix = get_environment(env_name).resource_prefix
    rules = messaging.find_resources(
        "AWS::Events::Rule", {"Properties": {"Name": physical_name(prefix, GATEWAY_SYNC_SCHEDULE.name)}}
    )
    (rule,) = rules.values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    (target,) = rule["Properties"]["Targets"]
    queues = messaging.find_resources(
        "AWS::SQS::Queue", {"Properties": {"QueueName": physical_name(prefix, GATEWAY_SYNC_QUEUE.name)}}
    )
    assert target["Arn"]["Fn::GetAtt"][0] in queues


def test_gateway_workers_consume_their_queues_with_dlqs(environment_templates):
    env_name, templates = environment_templates
    messaging = templates["async"]
    prefix = get_environment(env_name).resource_prefix
    for queue in (GATEWAY_SYNC_QUEUE, MODEL_DOWNLOAD_QUEUE):
        assert queue.consumer
        messaging.has_resource_properties(
            "AWS::SQS::Queue",
            {
                "QueueName": physical_name(prefix, queue.name),
                "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": queue.max_receive_count},
            },
        )
        (queue_id,) = messaging.find_resources(
            "AWS::SQS::Queue", {"Properties": {"QueueName": physical_name(prefix, queue.name)}}
        )
        messaging.has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {
                "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        )


def test_the_download_worker_takes_one_pull_per_invocation(environment_templates):
    env_name, templates = environment_templates
    messaging = templates["async"]
    name = physical_name(get_environment(env_name).resource_prefix, MODEL_DOWNLOAD_QUEUE.name)
    messaging.has_resource_properties("AWS::SQS::Queue", {"QueueName": name, "VisibilityTimeout": 960})
    (queue_id,) = messaging.find_resources("AWS::SQS::Queue", {"Properties": {"QueueName": name}})
    messaging.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]}, "BatchSize": 1}
    )
    assert MODEL_DOWNLOAD_QUEUE.visibility_timeout_s > MODEL_DOWNLOAD_QUEUE.consumer_timeout_s  # as Lambda requires
