"""The local harness does what AWS would: SQS → worker, scheduled rules, TTL, and Step
Functions running on moto's interpreter with Lambda tasks dispatched in-process."""

import json
import time
import uuid

import boto3
import pytest

from aiplane_local import lambda_runtime
from aiplane_local.provision import create_queue_with_dlq, create_schedule
from aiplane_shared import resources
from aiplane_shared.resources import physical_name

PREFIX = "aiplane-local"
REGION = "us-east-1"
CALLS: list[dict] = []


def recording_handler(event, context):
    CALLS.append(event)
    attempts = sum(1 for call in CALLS if "id" in call and call["id"] == event.get("id"))
    if "fail_until" in event and attempts <= event["fail_until"]:
        raise RuntimeError("failure on request")
    if "Records" in event:
        failed = [r["messageId"] for r in event["Records"] if json.loads(r["body"]).get("poison")]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
    return {"echo": event, "function": context.function_name}


@pytest.fixture(autouse=True)
def in_process_test_function(monkeypatch):
    real = lambda_runtime.load_handler
    monkeypatch.setattr(
        lambda_runtime, "load_handler", lambda name: recording_handler if name == "test_fn" else real(name)
    )
    CALLS.clear()


def test_sqs_dispatch_deletes_handled_messages_and_redrives_poison_to_the_dlq(local_stack):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = resources.Queue(
        f"test-{uuid.uuid4().hex[:8]}", "test", explicit_visibility_s=0, max_receive_count=2, consumer="test_fn"
    )
    urls = create_queue_with_dlq(sqs, PREFIX, queue)
    arn = sqs.get_queue_attributes(QueueUrl=urls[queue.name], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=urls[queue.name], MessageBody=json.dumps({"ok": True}))
    sqs.send_message(QueueUrl=urls[queue.name], MessageBody=json.dumps({"poison": True}))

    for _ in range(6):
        local_stack.dispatchers.deliver_once(sqs, queue, urls[queue.name], arn)
    assert CALLS and all(call["Records"][0]["eventSource"] == "aws:sqs" for call in CALLS)
    remaining = sqs.receive_message(QueueUrl=urls[queue.name], WaitTimeSeconds=0).get("Messages", [])
    dead = sqs.receive_message(QueueUrl=urls[queue.dlq_name], WaitTimeSeconds=0).get("Messages", [])
    assert remaining == []
    assert [json.loads(m["Body"]) for m in dead] == [{"poison": True}]


def test_scheduled_rule_delivers_a_scheduled_event_to_its_queue(local_stack):
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    queue = resources.Queue(f"tick-{uuid.uuid4().hex[:8]}", "test")
    local_stack.provisioned.queue_urls.update(create_queue_with_dlq(sqs, PREFIX, queue))
    schedule = resources.Schedule(f"tick-{uuid.uuid4().hex[:8]}", "test", 1, 0.1, queue.name)
    create_schedule(events, local_stack.provisioned, schedule)

    local_stack.dispatchers.fire_schedule_once(schedule)
    messages = sqs.receive_message(QueueUrl=local_stack.provisioned.queue_urls[queue.name]).get("Messages", [])
    event = json.loads(messages[0]["Body"])
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"][0].endswith(f"/{physical_name(PREFIX, schedule.name)}")


def test_ttl_sweep_deletes_expired_items_only(local_stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = physical_name(PREFIX, resources.IDENTITY_TABLE.name)
    past, future = str(int(time.time()) - 10), str(int(time.time()) + 3600)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "TTL#old"}, "sk": {"S": "x"}, "expires_at_epoch": {"N": past}})
    dynamodb.put_item(
        TableName=table, Item={"pk": {"S": "TTL#new"}, "sk": {"S": "x"}, "expires_at_epoch": {"N": future}}
    )
    assert local_stack.dispatchers.sweep_expired_items() >= 1
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"pk": {"S": "TTL#old"}, "sk": {"S": "x"}})
    assert "Item" in dynamodb.get_item(TableName=table, Key={"pk": {"S": "TTL#new"}, "sk": {"S": "x"}})


def state_machine(name: str, definition: dict) -> str:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn", type="EXPRESS"
    )["stateMachineArn"]


def lambda_task(**extra) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": f"{PREFIX}-test_fn", "Payload.$": "$"},
        "OutputPath": "$.Payload",
        **extra,
    }


def test_start_sync_execution_runs_lambda_tasks_in_process():
    arn = state_machine(f"sync-{uuid.uuid4().hex[:8]}", {"StartAt": "Step", "States": {"Step": lambda_task(End=True)}})
    result = boto3.client("stepfunctions", region_name=REGION).start_sync_execution(
        stateMachineArn=arn, input=json.dumps({"x": 1})
    )
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"echo": {"x": 1}, "function": "test_fn"}


def test_lambda_errors_drive_retry_and_catch():
    retry = {"Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 1}]}
    catch = {"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recovered"}]}
    arn = state_machine(
        f"retry-{uuid.uuid4().hex[:8]}",
        {
            "StartAt": "Flaky",
            "States": {
                "Flaky": lambda_task(Next="Doom", **retry),
                "Doom": {"Type": "Pass", "Result": {"id": "doomed", "fail_until": 99}, "Next": "AlwaysFails"},
                "AlwaysFails": lambda_task(End=True, **catch),
                "Recovered": {"Type": "Pass", "Result": {"recovered": True}, "End": True},
            },
        },
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    result = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"id": "flaky", "fail_until": 1}))
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"recovered": True}
    assert [call.get("id") for call in CALLS] == ["flaky", "flaky", "doomed"]
