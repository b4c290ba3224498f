"""Each family renders a domain error in its own contract's envelope."""

import pytest

from aiplane.api.envelopes import error_body
from aiplane.errors import ErrorKind, InvalidCredentialsError, NotFoundError, PaymentRequiredError, ValidationError


def test_runtime_envelope_is_openai_style():
    body = error_body("runtime", ValidationError("name is required", param="name"), "t-1")
    assert body == {
        "error": {
            "code": "invalid_parameter_value",
            "message": "name is required",
            "param": "name",
            "type": "invalid_request_error",
        }
    }


def test_mlworker_envelope_has_code_from_contract_enum_and_trace_id():
    body = error_body("mlworker", NotFoundError("no such task"), "t-2")
    assert body == {"error": "no such task", "code": "NOT_FOUND", "trace_id": "t-2"}


def test_gpufarm_envelope_uses_documented_codes_and_details():
    assert error_body("gpufarm", InvalidCredentialsError("bad token"), "t")["code"] == "AUTH_INVALID"
    body = error_body("gpufarm", PaymentRequiredError("over budget", details={"limit": 10}), "t")
    assert body == {"error": "over budget", "code": "SPENDING_LIMIT", "details": {"limit": 10}}
    assert error_body("gpufarm", ValidationError("bad", param="count"), "t")["details"] == {"field": "count"}


def test_appproxy_envelope_is_flat_with_machine_readable_code():
    body = error_body("appproxy", ValidationError("unknown protocol", code="INVALID_PROTOCOL"), "t-3")
    assert body == {"error": "unknown protocol", "code": "INVALID_PROTOCOL", "trace_id": "t-3"}


@pytest.mark.parametrize("family", ["runtime", "appproxy", "mlworker", "gpufarm"])
@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_renders_in_every_family(family, kind):
    from aiplane.errors import AiplaneError

    assert "error" in error_body(family, AiplaneError("x", kind=kind), "t")


def test_unknown_family_is_a_programming_error():
    with pytest.raises(ValueError):
        error_body("nope", NotFoundError("x"), "t")
