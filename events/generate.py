"""Write a sample API Gateway (REST, proxy) event for every API function, the chain-step
function's Step Functions payload and an SQS event for every queue worker, into events/.

`python -m events.generate` rewrites them; a test checks they are current.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from aiplane_shared import resources
from aiplane_shared.families import FAMILIES, base_path
from aiplane_shared.resources import CHAIN_STEP_FUNCTION, JWT_SIGNING_SECRET, SECRET_ROTATION_FUNCTION
from aiplane_shared.routes import OPENAPI_PATH, Route, function_name, groups_of, routes_of

EVENTS_DIR = Path(__file__).resolve().parent
ACCOUNT_ID = "123456789012"


def sample_route(family: str, group: str) -> tuple[str, str]:
    """A GET without path parameters when the group has one; else its first route."""
    routes: list[Route] = [route for route in routes_of(family) if route.group == group]
    if not routes:  # a meta group that serves only the OpenAPI document
        return "GET", OPENAPI_PATH
    plain_gets = [route for route in routes if route.method == "GET" and "{" not in route.path]
    chosen = (plain_gets or routes)[0]
    return chosen.method, chosen.path


def api_gateway_event(family: str, method: str, template: str) -> dict[str, Any]:
    path = re.sub(r"\{[^}]+\}", "sample-id", template)
    parameters = {name: "sample-id" for name in re.findall(r"\{([^}]+)\}", template)} or None
    return {
        "resource": template,
        "path": f"{base_path(family)}{path}",
        "httpMethod": method,
        "headers": {"Accept": "application/json", "Host": "api.example.com", "User-Agent": "aiplane-sample"},
        "multiValueHeaders": {
            "Accept": ["application/json"],
            "Host": ["api.example.com"],
            "User-Agent": ["aiplane-sample"],
        },
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": template,
            "httpMethod": method,
            "path": f"/dev{base_path(family)}{path}",
            "accountId": ACCOUNT_ID,
            "apiId": "sampleapi",
            "stage": "dev",
            "requestId": "sample-request-id",
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "aiplane-sample"},
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": 1767225600000,
        },
        "body": None,
        "isBase64Encoded": False,
    }


def authorizer_event(family: str) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:sampleapi/dev/GET/sample",
        "resource": "/sample",
        "path": "/sample",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "requestContext": {"apiId": "sampleapi", "stage": "dev", "accountId": ACCOUNT_ID},
    }


def websocket_connect_event(family: str) -> dict[str, Any]:
    """What a family's WebSocket API sends its function on `$connect` (no credentials here)."""
    return {
        "headers": {"Host": "sampleapi.execute-api.us-east-1.amazonaws.com", "Sec-WebSocket-Version": "13"},
        "multiValueHeaders": {
            "Host": ["sampleapi.execute-api.us-east-1.amazonaws.com"],
            "Sec-WebSocket-Version": ["13"],
        },
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "connectionId": "sample-connection=",
            "apiId": "sampleapi",
            "stage": "dev",
            "requestId": "sample-request-id",
            "domainName": "sampleapi.execute-api.us-east-1.amazonaws.com",
            "connectedAt": 1767225600000,
            "identity": {"sourceIp": "203.0.113.10"},
        },
        "isBase64Encoded": False,
    }


def sample_events() -> dict[str, dict[str, Any]]:
    samples: dict[str, dict[str, Any]] = {}
    for family in FAMILIES:
        for group in groups_of(family):
            method, template = sample_route(family, group)
            samples[function_name(family, group)] = api_gateway_event(family, method, template)
        samples[f"{family}_authorizer"] = authorizer_event(family)
    for family in resources.WEBSOCKET_FAMILIES:
        samples[resources.websocket_function_name(family)] = websocket_connect_event(family)
    samples[CHAIN_STEP_FUNCTION] = chain_step_event()
    for queue in resources.QUEUES:
        if queue.consumer:
            samples[queue.consumer] = sqs_event(queue)
    samples[SECRET_ROTATION_FUNCTION] = rotation_event()
    return samples


def sqs_event(queue: resources.Queue) -> dict[str, Any]:
    """One message as the queue's producers send it: a scheduled tick, a domain event, or a job."""
    region, queue_arn = "us-east-1", f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:{queue.name}"
    envelope = {
        "version": "0",
        "id": "sample-event-id",
        "account": ACCOUNT_ID,
        "time": "2026-01-01T00:00:00Z",
        "region": region,
        "detail": {},
    }
    schedules = [schedule for schedule in resources.SCHEDULES if schedule.target_queue == queue.name]
    rules = [rule for rule in resources.EVENT_RULES if rule.target_queue == queue.name]
    if schedules:
        body = {
            **envelope,
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{schedules[0].name}"],
        }
    elif rules and rules[0] is resources.LIVE_UPDATES_RULE:  # a status change, as aiplane.live.updates publishes it
        body = {
            **envelope,
            "detail-type": resources.LIVE_UPDATE_DETAIL_TYPE,
            "source": resources.LIVE_UPDATE_SOURCE,
            "resources": [],
            "detail": {
                "family": "mlworker",
                "user_id": "sample-user",
                "subscribers_only": False,
                "messages": [{"type": "task_update", "task_id": "sample-id", "status": "queued"}],
            },
        }
    elif rules:  # an appended runtime event, as aiplane.events.store publishes it
        pattern = rules[0].event_pattern
        body = {
            **envelope,
            "detail-type": pattern["detail-type"][0],
            "source": pattern["source"][0],
            "resources": [],
            "detail": {"event": {"id": "sample-event-id", "event_type": "sample.created", "data": {}}, "depth": 0},
        }
    elif queue is resources.SPEND_LOG_QUEUE:  # one request's usage, as aiplane.gateway.spend.spend_message writes it
        body = {
            "request_id": "sample-request",
            "user_id": "sample-user",
            "model": "sample-model",
            "key_id": None,
            "key_hash": None,
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "spend": 0.0,
            "unpriced": True,
            "status": "success",
            "started_at": 1767225600.0,
            "ended_at": 1767225601.0,
            "minute": "MINUTE#1767225600",
            "budgets": {},
            "reserved": {},
            "tpm": [],
        }
    else:
        body = {"jobId": "sample-id"}
    return sqs_records(body, queue_arn=queue_arn, message_id="sample-message-id")


def sqs_records(
    body: dict[str, Any], *, queue_arn: str = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:q", message_id: str | None = None
) -> dict[str, Any]:
    """An SQS event delivering one message with this JSON body, as Lambda's event source mapping sends it."""
    return {
        "Records": [
            {
                "messageId": message_id or str(uuid.uuid4()),
                "receiptHandle": "sample-receipt-handle",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def scheduled_tick() -> dict[str, Any]:
    """An SQS event holding one fresh Scheduled Event, as a schedule's queue delivers it (tests)."""
    return sqs_records(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "detail": {},
        }
    )


def rotation_event() -> dict[str, Any]:
    """What Secrets Manager sends the rotation function: one step of rotating the JWT keys."""
    return {
        "Step": "createSecret",
        "ClientRequestToken": "00000000-0000-4000-8000-000000000000",
        "SecretId": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:aiplane-local-{JWT_SIGNING_SECRET.name}-AbCdEf",
    }


def chain_step_event() -> dict[str, Any]:
    """What a compiled chain's Task state sends the chain-step function: one noop task."""
    task = {"id": "echo", "handler": "noop", "transition": {"branches": [{"operator": "default", "goto": "end"}]}}
    state = {
        "run_id": "sample-run",
        "vars": {"input": "hello"},
        "types": {"input": "string"},
        "current": "hello",
        "current_type": "string",
        "transition": "",
        "transition_number": None,
        "halt": None,
    }
    return {
        "task": json.dumps(task),
        "chain": json.dumps({"id": "sample", "debug": False, "token_limit": 0, "max_steps": 10}),
        "state": state,
    }


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name, event in sample_events().items():
        (EVENTS_DIR / f"{name}.json").write_text(render(event))


if __name__ == "__main__":
    main()
