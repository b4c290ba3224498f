"""cdk-nag (AwsSolutions pack) findings that stand, each with its reason. The template tests run
the pack over every stack and fail on any finding not acknowledged here."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import NagPackSuppression, NagSuppressions

EVERY_STACK = {
    "AwsSolutions-IAM5": "wildcards only where a name cannot be exact: Secrets Manager appends a random suffix to "
    "secret ARNs (`<name>-*`), a table's GSIs (`index/*`), the chain state machines and the "
    "provider/telegram secrets the code creates at run time (`<prefix>-chain-*`, "
    "`<prefix>-provider-*`), and actions without resource-level permissions (X-Ray, EC2 "
    "Describe, log deliveries, GetRandomPassword), and the WebSocket APIs' connections "
    "(`*/<stage>/POST/@connections/*`: the API ids live in the API stacks); every role is its own function's",
    "AwsSolutions-L1": "python3.12 is the runtime the packaged assets are built and tested for (bytecode included)",
}
API_STACKS = {
    "AwsSolutions-APIG2": "every body is validated by the function (pydantic) and refused with the contract's 400 in "
    "the family's envelope; API Gateway's validator would answer in its own shape",
    "AwsSolutions-COG4": "the families authenticate with their contracts' own credentials (API keys, JWTs, appproxy "
    "tokens), checked by the family's REQUEST authorizer",
    "AwsSolutions-APIG4": "the routes without an authorizer are listed, each with its reason, in "
    "aiplane_shared.routes.PUBLIC_ROUTES (login, register, health, ...); a WebSocket API's "
    "$connect authenticates in its function (aiplane.live.websocket), as the HTTP routes do",
    "AwsSolutions-APIG3": "WAF is a per-environment setting (environments.py `waf`): on in prod",
}
DATA_STACK = {
    "AwsSolutions-DDB3": "point-in-time recovery is a per-environment setting (environments.py): on in prod",
    "AwsSolutions-S1": "object-level access is audited through CloudTrail data events; server access logs would need "
    "a second bucket per environment",
    "AwsSolutions-SMG4": "the appproxy tokens are shared with the Backend.AI manager and workers and the GPU "
    "marketplace keys are issued by vast.ai/io.net: their owners rotate them (README, Secrets); "
    "the JWT signing keys and the admin API key rotate every 30 days",
}
ASYNC_STACK = {
    "AwsSolutions-SF1": "chains log errors only: ALL would write prompts and chat history into CloudWatch Logs",
}
MONITORING_STACK = {
    "AwsSolutions-SNS2": "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key, and "
    "alarm notifications carry no data",
}


def acknowledge(stacks: dict[str, cdk.Stack]) -> None:
    for name, stack in stacks.items():
        rules = {
            **EVERY_STACK,
            **(API_STACKS if name.startswith("api-") else {}),
            **{"data": DATA_STACK, "async": ASYNC_STACK, "monitoring": MONITORING_STACK}.get(name, {}),
        }
        NagSuppressions.add_stack_suppressions(
            stack, [NagPackSuppression(id=rule, reason=reason) for rule, reason in rules.items()]
        )
