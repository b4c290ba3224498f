"""Outbound calls (`outbound.send`, `open_stream`, `lines`): timeouts, opt-in retries, and failures
as typed OutboundErrors, against stand-in servers on 127.0.0.1 (a refusal is decided by the policy
before any socket opens)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aiplane import outbound
from aiplane.errors import BadGatewayError, GatewayTimeoutError
from aiplane.outbound_policy import HOOKS, OutboundPolicy, OutboundRefused
from aiplane_shared.environments import get_environment
from tests.integration.chains.stand_ins import StandInServer, Streamed


class Script:
    """Answers the requests in turn with the scripted (status, body) pairs, the last one from then on."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)

    def __call__(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def stand_in():
    servers: list[StandInServer] = []

    def start(*answers: tuple[int, Any]) -> StandInServer:
        servers.append(StandInServer(Script(*answers)))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_answer_and_its_json(stand_in):
    server = stand_in((200, {"ok": True}))
    response = outbound.send(HOOKS, "POST", f"{server.url}/x", json={"a": 1}, timeout=5)
    assert outbound.json_of(response) == {"ok": True}
    assert server.requests[0][:3] == ("POST", "/x", {"a": 1})


def test_an_error_status_is_bad_status_unless_the_caller_reads_it(stand_in):
    server = stand_in((429, {"error": "slow down"}))
    with pytest.raises(outbound.BadStatus) as failed:
        outbound.send(HOOKS, "GET", f"{server.url}/limited", timeout=5)
    assert failed.value.status == 429 and "slow down" in failed.value.text
    assert str(failed.value) == "answered 429" and failed.value.url == f"{server.url}/limited"
    assert outbound.send(HOOKS, "GET", f"{server.url}/limited", timeout=5, check_status=False).status_code == 429


def test_retries_are_opt_in_and_only_for_transient_statuses(stand_in):
    flaky = stand_in((503, {}), (502, {}), (200, {"ok": True}))
    assert outbound.send(HOOKS, "GET", flaky.url, timeout=5, retries=2, backoff_base_s=0).json() == {"ok": True}
    assert len(flaky.requests) == 3

    once = stand_in((503, {}), (200, {}))
    with pytest.raises(outbound.BadStatus):
        outbound.send(HOOKS, "GET", once.url, timeout=5)
    assert len(once.requests) == 1

    rejected = stand_in((400, {"error": "bad input"}))
    with pytest.raises(outbound.BadStatus) as failed:
        outbound.send(HOOKS, "POST", rejected.url, timeout=5, retries=3, backoff_base_s=0)
    assert failed.value.status == 400 and len(rejected.requests) == 1

    down = stand_in((503, {"error": "still down"}))
    answer = outbound.send(HOOKS, "GET", down.url, timeout=5, retries=2, backoff_base_s=0, check_status=False)
    assert answer.status_code == 503 and len(down.requests) == 3  # the last answer, once retries are spent


def test_a_refused_connection_is_unreachable_and_transient():
    with pytest.raises(outbound.Unreachable) as failed:
        outbound.send(HOOKS, "GET", f"http://127.0.0.1:{_closed_port()}/", timeout=5, retries=1, backoff_base_s=0)
    assert failed.value.transient and failed.value.cause_name == "ConnectError"


def test_a_timeout_is_timed_out_and_not_retried():
    def slow(method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        time.sleep(0.5)
        return 200, {}

    server = StandInServer(slow)
    try:
        with pytest.raises(outbound.TimedOut) as failed:
            outbound.send(HOOKS, "GET", server.url, timeout=0.1, retries=2, backoff_base_s=0)
        assert failed.value.timeout_s == 0.1 and failed.value.cause_name == "ReadTimeout"
        assert len(server.requests) == 1
        with pytest.raises(outbound.TimedOut) as failed:
            outbound.send(HOOKS, "GET", server.url, timeout=httpx.Timeout(0.1, connect=2))
        assert failed.value.timeout_s == 0.1
    finally:
        server.stop()


def test_an_answer_that_is_not_json_is_bad_response(stand_in):
    server = stand_in((200, Streamed([b"<html>not json</html>"])))
    with pytest.raises(outbound.BadResponse):
        outbound.json_of(outbound.send(HOOKS, "GET", server.url, timeout=5))


def test_a_stream_and_its_lines(stand_in):
    server = stand_in((200, Streamed([b"data: one\n\n", b"data: two\n", b"\n"])))
    response = outbound.open_stream(HOOKS, "POST", server.url, json={}, timeout=5)
    assert list(outbound.lines(response)) == ["data: one", "data: two"]
    assert response.is_closed


def test_a_stream_with_an_error_status_is_read_and_closed(stand_in):
    server = stand_in((500, {"error": {"message": "model crashed"}}))
    with pytest.raises(outbound.BadStatus) as failed:
        outbound.open_stream(HOOKS, "POST", server.url, json={}, timeout=5)
    assert failed.value.status == 500 and "model crashed" in failed.value.text


def test_a_stream_that_stalls_times_out_in_its_lines(stand_in):
    def stalled() -> Iterator[bytes]:
        yield b"data: first\n"
        time.sleep(0.5)
        yield b"data: late\n"

    server = stand_in((200, Streamed(stalled())))
    lines = outbound.lines(outbound.open_stream(HOOKS, "GET", server.url, timeout=0.1))
    assert next(lines) == "data: first"
    with pytest.raises(outbound.TimedOut) as failed:
        next(lines)
    assert failed.value.timeout_s == 0.1


def test_the_policy_still_refuses_before_connecting(stand_in):
    server = stand_in((200, {}))
    deployed = outbound.client(HOOKS, policy=OutboundPolicy("prod", get_environment("prod").outbound_allowlists))
    with pytest.raises(OutboundRefused, match="loopback") as refused:
        outbound.send(HOOKS, "GET", server.url, timeout=5, retries=2, via=deployed)
    assert not isinstance(refused.value, outbound.OutboundError)  # no site's failure mapping swallows it
    with pytest.raises(OutboundRefused):
        outbound.open_stream(HOOKS, "GET", server.url, timeout=5, via=deployed)
    assert server.requests == []


def test_gateway_error_is_the_502_or_504_of_a_waiting_request(stand_in):
    server = stand_in((503, {"error": "x" * 400}))
    with pytest.raises(outbound.BadStatus) as failed:
        outbound.send(HOOKS, "GET", server.url, timeout=5)
    bad_status = outbound.gateway_error(failed.value, "hook at h")
    assert isinstance(bad_status, BadGatewayError) and bad_status.message.startswith("hook at h answered 503: {")
    assert len(bad_status.message) == len("hook at h answered 503: ") + 300

    timed_out = outbound.TimedOut(httpx.ReadTimeout("slow"), url="http://h", timeout_s=2.5)
    assert isinstance(outbound.gateway_error(timed_out, "hook at h"), GatewayTimeoutError)
    assert outbound.gateway_error(timed_out, "hook at h").message == "hook at h did not answer within 2.5s"
    unreachable = outbound.Unreachable(httpx.ConnectError("refused"), url="http://h")
    assert outbound.gateway_error(unreachable, "the LLM backend").message == "the LLM backend is unreachable: refused"
    invalid = outbound.BadResponse("answered with invalid JSON", url="http://h")
    assert outbound.gateway_error(invalid, "the LLM backend").message == "the LLM backend answered with invalid JSON"


def test_backoff_is_full_jitter():
    assert all(0 <= outbound.backoff_s(3, 0.5) <= 4.0 for _ in range(100))
    assert outbound.backoff_s(0, 0) == 0
