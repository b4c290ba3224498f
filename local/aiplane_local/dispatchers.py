"""Local dispatchers: what AWS does between the resources, done by threads.

- SQS → worker Lambda: long-poll each queue that has a consumer and call its handler with an SQS
  event; messages the handler reports as failed (`batchItemFailures`) or that raise stay on the
  queue and go to the DLQ after `maxReceiveCount`, as with a Lambda event source mapping.
- Scheduled rules: moto stores them but never fires them; fire each on its local period by
  delivering a Scheduled Event to the schedule's target queue (what the rule's target does in AWS).
- TTL: moto never deletes expired items; sweep them.
EventBridge → SQS delivery for domain events is moto's own.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3

from aiplane.observability import logger
from aiplane_local.lambda_runtime import invoke
from aiplane_shared import resources
from aiplane_shared.resources import physical_name

SQS_WAIT_SECONDS = 1
TTL_SWEEP_PERIOD_S = 30.0


class Dispatchers:
    def __init__(self, prefix: str, region: str, queue_urls: dict[str, str]) -> None:
        self.prefix = prefix
        self.region = region
        self.queue_urls = queue_urls
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for queue in resources.QUEUES:
            if queue.consumer:
                self._spawn(f"sqs-{queue.name}", self._poll_queue, queue)
        for schedule in resources.SCHEDULES:
            self._spawn(f"schedule-{schedule.name}", self._fire_schedule, schedule)
        self._spawn("ttl-sweeper", self._sweep_ttl_forever)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=SQS_WAIT_SECONDS + 2)

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    # SQS -> worker handler
    def _poll_queue(self, queue: resources.Queue) -> None:
        sqs = boto3.client("sqs", region_name=self.region)
        url = self.queue_urls[queue.name]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self.stopping.is_set():
            try:
                self.deliver_once(sqs, queue, url, arn)
            except Exception:
                logger.exception("queue dispatch failed", extra={"queue": queue.name})
                self.stopping.wait(1)

    def deliver_once(self, sqs: Any, queue: resources.Queue, url: str, queue_arn: str) -> int:
        """Receive one batch and hand it to the consumer; returns how many messages it got."""
        received = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=queue.batch_size,
            WaitTimeSeconds=SQS_WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        event = {"Records": [_sqs_record(message, queue_arn, self.region) for message in received]}
        try:
            result = invoke(queue.consumer, event) or {}
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        except Exception:
            logger.exception("worker raised; the batch stays on the queue", extra={"queue": queue.name})
            return len(received)
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            )
        return len(received)

    # Scheduled rules
    def _fire_schedule(self, schedule: resources.Schedule) -> None:
        while not self.stopping.wait(schedule.local_period_s):
            try:
                self.fire_schedule_once(schedule)
            except Exception:
                logger.exception("schedule dispatch failed", extra={"schedule": schedule.name})

    def fire_schedule_once(self, schedule: resources.Schedule) -> None:
        events = boto3.client("events", region_name=self.region)
        sqs = boto3.client("sqs", region_name=self.region)
        rule_arn = events.describe_rule(Name=physical_name(self.prefix, schedule.name))["Arn"]
        scheduled_event = json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": rule_arn.split(":")[4],
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self.region,
                "resources": [rule_arn],
                "detail": {},
            }
        )
        sqs.send_message(QueueUrl=self.queue_urls[schedule.target_queue], MessageBody=scheduled_event)

    # TTL
    def _sweep_ttl_forever(self) -> None:
        while not self.stopping.wait(TTL_SWEEP_PERIOD_S):
            try:
                self.sweep_expired_items()
            except Exception:
                logger.exception("TTL sweep failed")

    def sweep_expired_items(self) -> int:
        dynamodb = boto3.client("dynamodb", region_name=self.region)
        now = str(int(time.time()))
        deleted = 0
        for table in resources.TABLES:
            name = physical_name(self.prefix, table.name)
            paginator = dynamodb.get_paginator("scan")
            pages = paginator.paginate(
                TableName=name,
                FilterExpression="#ttl < :now",
                ExpressionAttributeNames={"#ttl": table.ttl_attribute},
                ExpressionAttributeValues={":now": {"N": now}},
                ProjectionExpression=f"{resources.PARTITION_KEY}, {resources.SORT_KEY}",
            )
            for page in pages:
                for key in page.get("Items", []):
                    dynamodb.delete_item(TableName=name, Key=key)
                    deleted += 1
        return deleted


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
