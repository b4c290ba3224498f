"""Each family's API has one REQUEST authorizer running the shared credential check, with its
result cached per credential where the family has a single credential header."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_shared.families import FAMILIES

CREDENTIAL_HEADER = {"mlworker": "X-API-Key"}


def test_authorizers_share_the_validation_code_and_cache_per_credential(environment_templates):
    _, templates = environment_templates
    for family in FAMILIES:
        api = templates[f"api-{family}"]
        authorizers = api.find_resources("AWS::ApiGateway::Authorizer")
        assert len(authorizers) == 1, family
        properties = next(iter(authorizers.values()))["Properties"]
        assert properties["Type"] == "REQUEST"
        header = CREDENTIAL_HEADER.get(family)
        if header:
            assert properties["IdentitySource"] == f"method.request.header.{header}"
            assert properties["AuthorizerResultTtlInSeconds"] == 300
        else:
            # runtime takes X-API-Key, Bearer or the auth_token cookie, gpufarm Bearer or X-API-Key,
            # appproxy X-BackendAI-Token or a bearer JWT: no single cache key exists
            assert properties["AuthorizerResultTtlInSeconds"] == 0
        api.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": "functions.authorizer.handler.handler",
                "Environment": {"Variables": Match.object_like({"AIPLANE_FAMILY": family})},
            },
        )
