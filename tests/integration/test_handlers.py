"""Every function's Lambda handler answers its sample event from events/ (the integration tier
with generated events)."""

from __future__ import annotations

import json

import pytest

from aiplane_local.lambda_runtime import LocalLambdaContext, load_handler
from aiplane_shared import resources
from aiplane_shared.families import FAMILIES
from aiplane_shared.routes import PUBLIC, access_for, all_function_names
from events.generate import EVENTS_DIR, render, sample_events

SAMPLES = sample_events()
API_FUNCTIONS = all_function_names()


def family_of(function: str) -> str:
    return function.split("_", 1)[0]


def test_sample_events_are_current():
    for name, event in SAMPLES.items():
        assert (EVENTS_DIR / f"{name}.json").read_text() == render(event), f"run python -m events.generate ({name})"


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_handler_answers_its_sample_event(function):
    event = json.loads((EVENTS_DIR / f"{function}.json").read_text())
    response = load_handler(function)(event, LocalLambdaContext(function_name=function))
    family = family_of(function)
    public = access_for(family, event["httpMethod"], event["resource"]) == PUBLIC
    # A public sample without the body its route needs is answered 4xx; never a server error.
    status = response["statusCode"]
    assert (status < 500 or status == 501) if public else status == 401, response
    assert json.loads(response["body"])


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_handler_trusts_the_authorizer_context(function):
    event = json.loads((EVENTS_DIR / f"{function}.json").read_text())
    family = family_of(function)
    kind = {"appproxy": "appproxy_manager"}.get(family, "admin")
    if family == "appproxy" and access_for(family, event["httpMethod"], event["resource"]) == "worker":
        kind = "appproxy_worker"
    event["requestContext"]["authorizer"] = {"principalId": "p-1", "kind": kind, "credential": "api_key"}
    response = load_handler(function)(event, LocalLambdaContext(function_name=function))
    # Past the authorizer: never refused for credentials (a sample without a body may be a 400).
    status = response["statusCode"]
    assert status not in (401, 403) and (status < 500 or status == 501), response


@pytest.mark.parametrize("family", FAMILIES)
def test_authorizer_refuses_without_credentials_and_allows_with_them(family, monkeypatch, admin_api_key, worker_token):
    monkeypatch.setenv("AIPLANE_FAMILY", family)
    handler = load_handler("authorizer")
    event = json.loads((EVENTS_DIR / f"{family}_authorizer.json").read_text())
    with pytest.raises(Exception, match="^Unauthorized$"):
        handler(event, LocalLambdaContext(function_name=f"{family}_authorizer"))

    header = {
        "runtime": ("X-API-Key", admin_api_key),
        "mlworker": ("X-API-Key", admin_api_key),
        "gpufarm": ("Authorization", f"Bearer {admin_api_key}"),
        "appproxy": ("X-BackendAI-Token", worker_token),
    }[family]
    event["headers"][header[0]] = header[1]
    result = handler(event, LocalLambdaContext(function_name=f"{family}_authorizer"))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["policyDocument"]["Statement"][0]["Resource"].endswith("sampleapi/dev/*/*")
    assert result["context"]["kind"] in ("admin", "appproxy_worker")


@pytest.mark.parametrize("family", resources.WEBSOCKET_FAMILIES)
def test_websocket_function_refuses_connect_without_credentials_and_records_it_with_them(
    family, monkeypatch, admin_api_key
):
    from aiplane.live import connections

    monkeypatch.setenv("AIPLANE_FAMILY", family)
    name = resources.websocket_function_name(family)
    handler = load_handler(resources.WEBSOCKET_FUNCTION)
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    refused = handler(event, LocalLambdaContext(function_name=name))
    assert refused["statusCode"] == 401 and json.loads(refused["body"])["error"]
    event["headers"]["X-API-Key"] = admin_api_key
    event["requestContext"]["connectionId"] = f"handler-test-{family}"
    assert handler(event, LocalLambdaContext(function_name=name))["statusCode"] == 200
    assert connections.find(f"handler-test-{family}").family == family
    ping = {"requestContext": {**event["requestContext"], "routeKey": "$default"}, "body": '{"type":"ping"}'}
    assert json.loads(handler(ping, LocalLambdaContext(function_name=name))["body"]) == {"type": "pong"}
    gone = {"requestContext": {**event["requestContext"], "routeKey": "$disconnect"}}
    assert handler(gone, LocalLambdaContext(function_name=name))["statusCode"] == 200
    assert connections.find(f"handler-test-{family}") is None


def test_websocket_sender_answers_its_sample_without_failures():
    event = json.loads((EVENTS_DIR / "websocket_sender.json").read_text())
    assert load_handler("websocket_sender")(event, LocalLambdaContext(function_name="websocket_sender")) == {
        "batchItemFailures": []
    }
