"""Asynchronous plumbing: work queues with DLQs and their worker functions, the domain event
bus, and scheduled rules that target queues (the same pattern runs in moto and in AWS)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from aiplane_infra.constructs.functions import FunctionFactory
from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.resources import physical_name

DLQ_RETENTION = cdk.Duration.days(14)


class WorkQueues(Construct):
    """Each queue with its DLQ; a queue with a consumer gets its worker function, which reports
    partial batch failures so one poison message never blocks the rest."""

    def __init__(
        self, scope: Construct, construct_id: str, environment: Environment, functions: FunctionFactory
    ) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for definition in resources.QUEUES:
            suffix = ".fifo" if definition.fifo else ""
            dlq = sqs.Queue(
                self,
                definition.dlq_name,
                queue_name=physical_name(environment.resource_prefix, definition.dlq_name) + suffix,
                retention_period=DLQ_RETENTION,
                fifo=definition.fifo or None,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            queue = sqs.Queue(
                self,
                definition.name,
                queue_name=physical_name(environment.resource_prefix, definition.name) + suffix,
                visibility_timeout=cdk.Duration.seconds(definition.visibility_timeout_s),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=definition.max_receive_count),
                fifo=definition.fifo or None,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            if definition.consumer:
                worker = functions.make(
                    definition.consumer, definition.consumer, timeout_s=definition.consumer_timeout_s
                )
                worker.add_event_source(
                    event_sources.SqsEventSource(
                        queue, batch_size=definition.batch_size, report_batch_item_failures=True
                    )
                )
            self.queues[definition.name] = queue
            self.dead_letter_queues[definition.name] = dlq


class EventRouting(Construct):
    """The domain event bus, the scheduled rules (on the default bus, apart from domain events) and
    the event-pattern rules that forward matching events to queues."""

    def __init__(self, scope: Construct, construct_id: str, environment: Environment, queues: WorkQueues) -> None:
        super().__init__(scope, construct_id)
        self.buses = {
            definition.name: events.EventBus(
                self, definition.name, event_bus_name=physical_name(environment.resource_prefix, definition.name)
            )
            for definition in resources.EVENT_BUSES
        }
        self.rules: dict[str, events.Rule] = {}
        for schedule in resources.SCHEDULES:
            self.rules[schedule.name] = events.Rule(
                self,
                schedule.name,
                rule_name=physical_name(environment.resource_prefix, schedule.name),
                description=schedule.purpose,
                schedule=events.Schedule.expression(schedule.schedule_expression),
                targets=[targets.SqsQueue(queues.queues[schedule.target_queue])],
            )
        for rule in resources.EVENT_RULES:
            self.rules[rule.name] = events.Rule(
                self,
                rule.name,
                rule_name=physical_name(environment.resource_prefix, rule.name),
                description=rule.purpose,
                event_bus=self.buses[rule.event_bus] if rule.event_bus else None,
                event_pattern=event_pattern(rule.event_pattern),
                targets=[targets.SqsQueue(queues.queues[rule.target_queue])],
            )


def event_pattern(pattern: dict) -> events.EventPattern:
    """An EventBridge pattern written as JSON (`detail-type`, ...) as CDK's EventPattern."""
    return events.EventPattern(**{key.replace("-", "_"): value for key, value in pattern.items()})
