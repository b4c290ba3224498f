"""API Gateway REQUEST authorizer, one deployment per family (AIPLANE_FAMILY).

It runs the same credential check as the in-app dependency. It only establishes *who* calls:
the policy allows the whole API so a cached result can serve every route, and the function
behind the route checks the route's access level (e.g. appproxy manager vs worker).
"""

from __future__ import annotations

import os
from typing import Any

from aiplane.cold_start import init_done
from aiplane.errors import InvalidCredentialsError, UnauthenticatedError
from aiplane.identity.authenticate import Credentials, authenticate
from aiplane.observability import logger

UNAUTHORIZED = "Unauthorized"  # the exact message API Gateway turns into a 401


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    family = os.environ["AIPLANE_FAMILY"]
    try:
        source_ip = ((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp")
        principal = authenticate(family, Credentials.from_headers(event.get("headers") or {}), source_ip=source_ip)
    except (UnauthenticatedError, InvalidCredentialsError) as refused:
        logger.info("refused", extra={"family": family, "reason": refused.message})
        raise Exception(UNAUTHORIZED) from None
    region, account, api_path = _arn_parts(event["methodArn"])
    api_id, stage = api_path.split("/")[:2]
    return {
        "principalId": principal.id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/*/*",
                }
            ],
        },
        "context": principal.as_context(),
    }


def _arn_parts(method_arn: str) -> tuple[str, str, str]:
    # arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}
    _, _, _, region, account, api_path = method_arn.split(":", 5)
    return region, account, api_path


init_done()  # the end of init (aiplane.cold_start)
