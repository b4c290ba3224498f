"""Alarms: every DLQ holding a message, every function's errors and throttles, every API's 5xx
rate. They notify the environment's alarm topic (subscribe to it, or set `alarm_email`).

Alarms name their metrics by physical names, so the monitoring stack needs no cross-stack exports.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.families import FAMILIES
from aiplane_shared.resources import physical_name

ALARM_TOPIC = "alarms"


class Alarms(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, environment: Environment, function_names: list[str]
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = environment.resource_prefix
        period = cdk.Duration.minutes(environment.alarm_period_minutes)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=physical_name(prefix, ALARM_TOPIC),
            display_name="aiplane alarms",
            enforce_ssl=True,
        )
        if environment.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(environment.alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(alarm_id: str, description: str, metric: cloudwatch.Metric, threshold: float) -> None:
            created = metric.create_alarm(
                self,
                alarm_id,
                alarm_name=f"{prefix}-{alarm_id}",
                alarm_description=description,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(actions.SnsAction(self.topic))
            self.alarms.append(created)

        for queue in resources.QUEUES:
            name = physical_name(prefix, queue.dlq_name) + (".fifo" if queue.fifo else "")
            alarm(
                f"dlq-{queue.name}",
                f"messages in {name}: their work failed {queue.max_receive_count} times",
                cloudwatch.Metric(
                    namespace="AWS/SQS",
                    metric_name="ApproximateNumberOfMessagesVisible",
                    dimensions_map={"QueueName": name},
                    statistic="Maximum",
                    period=period,
                ),
                0,
            )
        for function in function_names:
            for metric_name in ("Errors", "Throttles"):
                alarm(
                    f"{function.removeprefix(prefix + '-')}-{metric_name.lower()}",
                    f"{function}: {metric_name.lower()}",
                    cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name=metric_name,
                        dimensions_map={"FunctionName": function},
                        statistic="Sum",
                        period=period,
                    ),
                    0,
                )
        for family in FAMILIES:
            api_name = f"{prefix}-{family}"
            # 5XXError is 0 or 1 per request: its average is the 5xx rate.
            alarm(
                f"api-{family}-5xx",
                f"{api_name}: more than {environment.alarm_api_5xx_rate:.0%} of requests answer 5xx",
                cloudwatch.Metric(
                    namespace="AWS/ApiGateway",
                    metric_name="5XXError",
                    dimensions_map={"ApiName": api_name, "Stage": environment.name},
                    statistic="Average",
                    period=period,
                ),
                environment.alarm_api_5xx_rate,
            )
