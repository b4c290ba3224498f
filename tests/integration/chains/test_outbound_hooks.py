"""Replays of the hook SSRF: webhook and remote hooks aimed at metadata and internal addresses are
refused with a 400 naming the outbound-URL policy, at create time and at call time, redirects
included. Only loopback is ever connected to; every other address is refused before connecting."""

from __future__ import annotations

import uuid

import pytest

from aiplane import outbound_policy
from aiplane.outbound_policy import OutboundPolicy
from aiplane_shared.environments import get_environment
from tests.integration.chains.stand_ins import StandInServer
from tests.outbound_policies import use_deployed_policy
from tests.standins import LoopbackServer, StandInHandler

METADATA_BODY = {"iam": "AKIA-internal-secret"}


@pytest.fixture
def internal_server():
    """Stands in for an internal service on loopback (an instance metadata endpoint, say)."""
    server = StandInServer(lambda method, path, body: (200, METADATA_BODY))
    yield server
    server.stop()


@pytest.fixture
def deployed_policy(monkeypatch):
    """The policy as dev and prod configure it (hooks: public addresses only), with a fake DNS."""
    return use_deployed_policy(
        monkeypatch, {"metadata.test": ["169.254.169.254"], "hooks.example.test": ["93.184.216.34"]}
    )


def webhook_tasks(url):
    return [
        {
            "id": "call",
            "handler": "hook",
            "hook": {"name": "webhook", "args": {"url": url}},
            "transition": {"branches": [{"operator": "default", "goto": "end"}]},
        }
    ]


def webhook_chain(runtime, url, input_value="x"):
    return runtime.post(
        "/tasks",
        json={"input": input_value, "inputType": "string", "chain": {"id": "ssrf", "tasks": webhook_tasks(url)}},
    )


def assert_refused(response):
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "outbound-URL policy" in error["message"] and "AKIA" not in response.text
    return error


def test_a_webhook_to_loopback_metadata_is_refused_where_hooks_may_not_reach_loopback(
    runtime, internal_server, deployed_policy
):
    metadata = f"{internal_server.url}/latest/meta-data/iam/security-credentials/"
    error = assert_refused(webhook_chain(runtime, metadata))  # a literal URL: refused with the chain
    assert "loopback" in error["message"] and error["param"] == "tasks[0].hook.args.url"
    # a templated URL is only known when the task runs: refused there
    assert "loopback" in assert_refused(webhook_chain(runtime, "{{.input}}", input_value=metadata))["message"]
    stored = runtime.post("/taskchains", json={"id": f"ssrf-{uuid.uuid4().hex[:8]}", "tasks": webhook_tasks(metadata)})
    assert_refused(stored)
    assert internal_server.requests == []  # refused before connecting


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.test/latest/meta-data/",
    ],
)
def test_a_webhook_to_the_metadata_service_is_refused(runtime, deployed_policy, url):
    assert "cloud metadata" in assert_refused(webhook_chain(runtime, url))["message"]


def test_a_webhook_to_link_local_is_refused_even_where_loopback_is_admitted(runtime):
    # the local environment (make run, tests) admits loopback for hooks, never link-local
    assert_refused(webhook_chain(runtime, "http://169.254.169.254/latest/meta-data/"))


class _Redirector(StandInHandler):
    def do_POST(self) -> None:
        self.read_body()
        self.redirect(307, self.server.stand_in.location)  # type: ignore[attr-defined]

    do_GET = do_POST


@pytest.fixture
def redirector():
    with LoopbackServer(_Redirector) as server:
        yield server


def test_a_redirect_to_a_refused_address_is_refused(runtime, redirector):
    redirector.location = "http://169.254.169.254/latest/meta-data/"
    assert_refused(webhook_chain(runtime, f"{redirector.url}/hook"))


def test_a_remote_hook_redirected_to_a_refused_address_is_refused(runtime, redirector):
    redirector.location = "http://[fe80::1]/"
    hook = runtime.post(
        "/hooks/remote",
        json={"name": f"r-{uuid.uuid4().hex[:8]}", "endpointUrl": redirector.url},
    )
    assert hook.status_code == 201, hook.text
    tasks = [
        {
            "id": "call",
            "handler": "hook",
            "hook": {"name": hook.json()["name"]},
            "transition": {"branches": [{"operator": "default", "goto": "end"}]},
        }
    ]
    assert_refused(
        runtime.post("/tasks", json={"input": "x", "inputType": "string", "chain": {"id": "r", "tasks": tasks}})
    )


def test_remote_hooks_aimed_at_refused_addresses_are_refused_when_set(runtime, internal_server, deployed_policy):
    before = len(runtime.get("/hooks/remote", params={"limit": 1000}).json())
    for url in (
        f"{internal_server.url}/latest/meta-data/",
        "http://169.254.169.254/",
        "http://metadata.test/",
        "http://10.0.0.8/admin",
    ):
        response = runtime.post("/hooks/remote", json={"name": f"s-{uuid.uuid4().hex[:8]}", "endpointUrl": url})
        assert assert_refused(response)["param"] == "endpointUrl"
    assert len(runtime.get("/hooks/remote", params={"limit": 1000}).json()) == before  # nothing written

    public = runtime.post(
        "/hooks/remote", json={"name": f"p-{uuid.uuid4().hex[:8]}", "endpointUrl": "https://hooks.example.test/"}
    )
    assert public.status_code == 201, public.text
    hook = public.json()
    moved = runtime.put(
        f"/hooks/remote/{hook['id']}", json={"name": hook["name"], "endpointUrl": "http://metadata.test/"}
    )
    assert_refused(moved)
    assert runtime.get(f"/hooks/remote/{hook['id']}").json()["endpointUrl"] == "https://hooks.example.test/"
    runtime.delete(f"/hooks/remote/{hook['id']}")


def test_a_stored_hook_is_checked_again_when_called(runtime, internal_server, monkeypatch):
    hook = runtime.post("/hooks/remote", json={"name": f"c-{uuid.uuid4().hex[:8]}", "endpointUrl": internal_server.url})
    assert hook.status_code == 201  # admitted where it was set (loopback, local)
    prod = OutboundPolicy("prod", get_environment("prod").outbound_allowlists)
    monkeypatch.setattr(outbound_policy, "environment_policy", lambda: prod)
    tasks = [
        {
            "id": "call",
            "handler": "hook",
            "hook": {"name": hook.json()["name"]},
            "transition": {"branches": [{"operator": "default", "goto": "end"}]},
        }
    ]
    assert_refused(
        runtime.post("/tasks", json={"input": "x", "inputType": "string", "chain": {"id": "c", "tasks": tasks}})
    )
    assert internal_server.requests == []
    schemas = runtime.get("/hooks/schemas").json()
    assert "outbound-URL policy" in schemas[hook.json()["name"]]["error"]
