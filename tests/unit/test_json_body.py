"""The one bound on JSON request bodies: depth and DynamoDB-storable numbers."""

from __future__ import annotations

import pytest

from aiplane.api.json_body import MAX_DEPTH, check_json_body
from aiplane.errors import ValidationError


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 0, "b": -0.0, "c": 1e-130, "d": -9.999e125, "e": 12345678901234567890123456789012345678}',
        b'{"price": 0.30000000000000004, "n": 100000000000000000000000000000000000000000000000000}',  # one significant digit
        b"[" * MAX_DEPTH + b"]" * MAX_DEPTH,
        b"not json at all",
        b"",
        b'{"broken": ',
    ],
)
def test_storable_numbers_shallow_bodies_and_non_json_pass(body):
    check_json_body(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"estimated_cost": 1.7976931348623157e308}',
        b'{"duration_hours": 5e-324}',
        b'{"x": 1e126}',
        b'{"x": -1e-131}',
        b'{"x": 1e999}',
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": -Infinity}',
        b'{"x": 123456789012345678901234567890123456789}',  # 39 significant digits
        b'{"x": ' + b"9" * 5000 + b"}",
    ],
)
def test_numbers_dynamodb_cannot_store_are_refused(body):
    with pytest.raises(ValidationError):
        check_json_body(body)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_refused_without_recursing(depth):
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        with pytest.raises(ValidationError, match="nests deeper"):
            check_json_body(body)
