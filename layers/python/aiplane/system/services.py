"""GET /system/services reports every table, queue (with its DLQ), event bus and bucket declared
in aiplane_shared.resources, checked live with DescribeTable, GetQueueAttributes,
DescribeEventBus and HeadBucket. POST /executor/sync answers what the function executor has to
refresh: nothing, as it caches no functions (see EXECUTOR_SYNC_ANSWER)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aiplane.data import aws
from aiplane.settings import get_settings
from aiplane_shared import resources

# The resource types access entries may name (as contenox reports them).
RESOURCE_TYPES = ("system", "files", "blobs", "chunks")
# The trigger runner (functions/runtime_event_triggers) reads the triggers of each event's type and
# their functions from the runtime table for every event and starts a fresh sandbox per run: it holds
# no cache a sync could refresh, so a saved function or trigger applies from the next event on.
EXECUTOR_SYNC_ANSWER = (
    "nothing to refresh: the function executor reads functions and event triggers from storage on every event"
)

OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"


def _checked(
    name: str, kind: str, check: Callable[[str], tuple[str, dict[str, Any]]], physical: str | None = None
) -> dict[str, Any]:
    physical = physical or get_settings().resource(name)
    try:
        status, details = check(physical)
    except (ClientError, BotoCoreError) as error:
        status, details = UNAVAILABLE, {"error": str(error)}
    return {"name": name, "kind": kind, "resource": physical, "status": status, "details": details}


def _table(physical: str) -> tuple[str, dict[str, Any]]:
    table = aws.client("dynamodb").describe_table(TableName=physical)["Table"]
    status = OK if table["TableStatus"] == "ACTIVE" else DEGRADED
    return status, {"tableStatus": table["TableStatus"], "itemCount": table.get("ItemCount", 0)}


def _queue_depth(physical: str) -> dict[str, int]:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=physical)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return {
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "inFlight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }


def _queue(queue: resources.Queue) -> Callable[[str], tuple[str, dict[str, Any]]]:
    def check(physical: str) -> tuple[str, dict[str, Any]]:
        depth = _queue_depth(physical)
        dead = _queue_depth(get_settings().resource(queue.dlq_name))["visible"]
        return (DEGRADED if dead else OK), {**depth, "deadLetters": dead}  # messages in the DLQ need a look

    return check


def _bus(physical: str) -> tuple[str, dict[str, Any]]:
    bus = aws.client("events").describe_event_bus(Name=physical)
    return OK, {"arn": bus["Arn"]}


def _bucket(physical: str) -> tuple[str, dict[str, Any]]:
    aws.client("s3").head_bucket(Bucket=physical)
    return OK, {}


def services() -> list[dict[str, Any]]:
    return [
        *(_checked(table.name, "table", _table) for table in resources.TABLES),
        *(_checked(queue.name, "queue", _queue(queue)) for queue in resources.QUEUES),
        *(_checked(bus.name, "event-bus", _bus) for bus in resources.EVENT_BUSES),
        *(_checked(bucket.name, "bucket", _bucket, get_settings().bucket(bucket.name)) for bucket in resources.BUCKETS),
    ]
