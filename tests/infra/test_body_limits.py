"""Bodies past what the Lambda invoke takes (over LAMBDA_BODY_MAX_BYTES, under API Gateway's 10 MB)
are answered with the family's 413 envelope by API Gateway (DEFAULT_4XX) or the WAF, never a
gateway error; over 10 MB, REQUEST_TOO_LARGE (tests/infra/test_templates.py)."""

from __future__ import annotations

import json
import re

from aws_cdk.assertions import Match

from aiplane_infra.constructs.family_api import LAMBDA_REFUSAL_MESSAGE, integer_above
from aiplane_shared.environments import get_environment
from aiplane_shared.families import FAMILIES
from aiplane_shared.payloads import LAMBDA_BODY_MAX_BYTES
from tests.integration.test_contract_surface import assert_envelope

TOO_LARGE_CODE = {
    "runtime": "payload_too_large",
    "mlworker": "BAD_REQUEST",
    "appproxy": "BAD_REQUEST",
    "gpufarm": "QUOTA_EXCEEDED",
}


def test_the_body_bound_fits_one_lambda_invocation_base64_encoded():
    assert LAMBDA_BODY_MAX_BYTES * 4 / 3 + 64 * 1024 <= 6_291_456
    assert LAMBDA_BODY_MAX_BYTES > 4.4 * 1024 * 1024  # and the 4 MiB inline bodies stay under it


def test_integer_above_matches_exactly_the_larger_lengths():
    pattern = re.compile(integer_above(LAMBDA_BODY_MAX_BYTES))
    for length in (0, 1, 100, LAMBDA_BODY_MAX_BYTES - 1, LAMBDA_BODY_MAX_BYTES, 999_999):
        assert not pattern.match(str(length)), length
    for length in (
        LAMBDA_BODY_MAX_BYTES + 1,
        LAMBDA_BODY_MAX_BYTES + 10,
        5_000_000,
        6_000_000,
        9_999_999,
        10_485_760,
        10**12,
    ):
        assert pattern.match(str(length)), length
    for limit in (8, 9, 10, 99, 4_000_000, 4_669_999):
        below_or_at = [n for n in range(max(0, limit - 50), limit + 1)]
        above = list(range(limit + 1, limit + 200))
        assert not any(re.match(integer_above(limit), str(n)) for n in below_or_at), limit
        assert all(re.match(integer_above(limit), str(n)) for n in above), limit


def test_default_4xx_gives_the_lambda_size_refusal_the_family_413_envelope(environment_templates):
    _, templates = environment_templates
    for family in FAMILIES:
        responses = templates[f"api-{family}"].find_resources(
            "AWS::ApiGateway::GatewayResponse", {"Properties": {"ResponseType": "DEFAULT_4XX"}}
        )
        (response,) = responses.values()
        assert "StatusCode" not in response["Properties"]  # API Gateway's 413 stays a 413
        template = response["Properties"]["ResponseTemplates"]["application/json"]
        match = re.fullmatch(
            r'#if\(\$context\.error\.messageString\.contains\("(.+?)"\)\)(.*)#\{else\}(.*)#end', template
        )
        assert match and match.group(1) == LAMBDA_REFUSAL_MESSAGE, template
        too_large = json.loads(match.group(2).replace("$context.requestId", "request-1"))
        assert_envelope(family, too_large)
        assert TOO_LARGE_CODE[family] in json.dumps(too_large) and "presigned" in json.dumps(too_large)


def test_the_waf_refuses_bodies_over_the_lambda_limit_with_the_family_413(environment_templates):
    env_name, templates = environment_templates
    if not get_environment(env_name).waf:
        return
    for family in FAMILIES:
        api = templates[f"api-{family}"]
        api.has_resource_properties(
            "AWS::WAFv2::WebACL",
            {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Name": "BodyOverLambdaLimit",
                                "Priority": 0,
                                "Action": {
                                    "Block": {
                                        "CustomResponse": {
                                            "ResponseCode": 413,
                                            "CustomResponseBodyKey": "payload_too_large",
                                        }
                                    }
                                },
                                "Statement": {
                                    "RegexMatchStatement": {
                                        "FieldToMatch": {"SingleHeader": {"Name": "content-length"}},
                                        "RegexString": integer_above(LAMBDA_BODY_MAX_BYTES),
                                    }
                                },
                            }
                        )
                    ]
                )
            },
        )
        (acl,) = api.find_resources("AWS::WAFv2::WebACL").values()
        body = acl["Properties"]["CustomResponseBodies"]["payload_too_large"]
        assert body["ContentType"] == "APPLICATION_JSON"
        assert_envelope(family, json.loads(body["Content"]))
        assert TOO_LARGE_CODE[family] in body["Content"]
        priorities = [rule["Priority"] for rule in acl["Properties"]["Rules"]]
        assert len(priorities) == len(set(priorities))
