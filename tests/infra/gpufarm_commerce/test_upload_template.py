"""Model uploads travel through API Gateway as binary, and the functions may use the artifacts bucket."""

from __future__ import annotations

from aws_cdk.assertions import Match


def test_multipart_bodies_are_binary_media(environment_templates):
    _, templates = environment_templates
    templates["api-gpufarm"].has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {
            "BinaryMediaTypes": Match.array_with(["multipart/form-data"]),
        },
    )
