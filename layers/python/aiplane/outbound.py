"""Outbound HTTP calls, every one under the outbound-URL policy (`aiplane.outbound_policy`).

The clients of this module check every connection they open: the socket connects to the very
address that was checked (no DNS rebinding between check and connect), and a redirect's
connection is checked anew. TLS still verifies the certificate against the URL's host name.

Calls go through `send` (or `open_stream` and `lines` for a streamed answer): a per-call timeout,
opt-in jittered retries of transient failures, and failures as `OutboundError`s (`TimedOut`,
`Unreachable`, `BadStatus`, `BadResponse`), which each call site turns into its family's error in
one place (`gateway_error` for the 502/504 of a request waiting on the call). A policy refusal is
`OutboundRefused`, a 400 wherever it surfaces: it is not an OutboundError, so no site's mapping of
upstream failures swallows it.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Collection, Iterable, Iterator
from functools import cache
from typing import Any

import httpcore
import httpx

from aiplane import outbound_policy
from aiplane.errors import BadGatewayError, GatewayTimeoutError
from aiplane.observability import trace_http_clients
from aiplane.outbound_policy import OutboundPolicy

MAX_REDIRECTS = 5
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class _CheckedNetwork(httpcore.SyncBackend):
    """Connects only to addresses the policy admits, to exactly the address it checked."""

    def __init__(self, purpose: str, policy: OutboundPolicy | None) -> None:
        self.purpose = purpose
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        policy = self.policy or outbound_policy.environment_policy()
        try:
            addresses = policy.admitted(host, port, self.purpose)
        except OSError as error:
            raise httpcore.ConnectError(f"{host}: {error}") from None
        *others, last = addresses
        for address in others:
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError:
                continue  # the host's next address
        return super().connect_tcp(str(last), port, timeout, local_address, socket_options)


@cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client of the process: each load of the CA bundle costs 25-50 ms
    of a cold start, and httpx would load it once per transport."""
    return httpx.create_ssl_context()


class _CheckedTransport(httpx.HTTPTransport):
    def __init__(self, purpose: str, policy: OutboundPolicy | None, limits: httpx.Limits) -> None:
        super().__init__(verify=_ssl_context(), limits=limits)
        # httpx builds its pool without a way to name the network backend; this pool connects through the policy.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedNetwork(purpose, policy),
        )


def client(
    purpose: str, *, policy: OutboundPolicy | None = None, limits: httpx.Limits = DEFAULT_LIMITS, **kwargs: Any
) -> httpx.Client:
    """An httpx client whose every connection passes the policy (the environment's unless given)."""
    trace_http_clients()
    return httpx.Client(transport=_CheckedTransport(purpose, policy, limits), max_redirects=MAX_REDIRECTS, **kwargs)


@cache
def _shared_client(purpose: str) -> httpx.Client:
    return client(purpose)


def request(purpose: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """`httpx.request` through the purpose's checked client (pass follow_redirects=True to follow)."""
    return _shared_client(purpose).request(method, url, **kwargs)


# ---- calls: timeouts, retries and the failures a call site maps --------------------------------

Timeouts = float | httpx.Timeout  # seconds for every phase, or per phase
RETRY_STATUSES = (429, 502, 503, 504)


class OutboundError(Exception):
    """An outbound call failed. The message never names the URL (it may hold a credential, like a
    Telegram bot token); `url` does. `cause_name` is what failed in one word (httpx's ConnectError,
    ReadTimeout...), for a site whose callers should not see more."""

    def __init__(self, message: str, *, url: str, cause_name: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.cause_name = cause_name or type(self).__name__


class TimedOut(OutboundError):
    """No answer (or no connection) within the call's timeout; `timeout_s` is its read timeout."""

    def __init__(self, error: httpx.TimeoutException, *, url: str, timeout_s: float | None) -> None:
        super().__init__(str(error), url=url, cause_name=type(error).__name__)
        self.timeout_s = timeout_s


class Unreachable(OutboundError):
    """No exchange: the connection failed or broke, or the answer was not HTTP. `transient`: a
    refused or reset connection, which may well work on a second try (a protocol error will not)."""

    def __init__(self, error: httpx.HTTPError, *, url: str) -> None:
        super().__init__(str(error), url=url, cause_name=type(error).__name__)
        self.transient = isinstance(error, (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError))


class BadStatus(OutboundError):
    """The upstream answered 4xx or 5xx; `text` is its body (empty when it could not be read)."""

    def __init__(self, response: httpx.Response, text: str, *, url: str) -> None:
        super().__init__(f"answered {response.status_code}", url=url)
        self.status = response.status_code
        self.text = text
        self.headers = response.headers

    @property
    def retry_after(self) -> str | None:
        return self.headers.get("retry-after")


class BadResponse(OutboundError):
    """The answer could not be read as what the caller expects (JSON)."""


def backoff_s(attempt: int, base_s: float) -> float:
    """Full jitter: uniform in [0, base * 2^attempt], so retrying callers do not arrive together."""
    return random.uniform(0, base_s * (2**attempt))


def _transport_failure(error: httpx.HTTPError, url: str, timeout: Timeouts | None) -> OutboundError:
    if isinstance(error, httpx.TimeoutException):
        return TimedOut(error, url=url, timeout_s=timeout.read if isinstance(timeout, httpx.Timeout) else timeout)
    return Unreachable(error, url=url)


def _bad_status(response: httpx.Response, url: str) -> BadStatus:
    try:
        response.read()
        text = response.text
    except httpx.HTTPError:
        text = ""
    return BadStatus(response, text, url=url)


def send(
    purpose: str,
    method: str,
    url: str,
    *,
    timeout: Timeouts,
    retries: int = 0,
    backoff_base_s: float = 0.2,
    retry_statuses: Collection[int] = RETRY_STATUSES,
    check_status: bool = True,
    via: httpx.Client | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One call through the purpose's checked client (or `via`, a client of this module). A 4xx or
    5xx is BadStatus unless `check_status` is off (then the last answer is returned). `retries` (opt
    in, for idempotent calls) tries again after a jittered pause on a transient Unreachable or a
    status in `retry_statuses`; a timeout is not retried, the caller's time is spent."""
    http = via or _shared_client(purpose)
    attempt = 0
    while True:
        try:
            response = http.request(method, url, timeout=timeout, **kwargs)
        except httpx.HTTPError as error:
            failure = _transport_failure(error, url, timeout)
            if attempt == retries or not (isinstance(failure, Unreachable) and failure.transient):
                raise failure from error
        else:
            if response.status_code < 400:
                return response
            if attempt == retries or response.status_code not in retry_statuses:
                if not check_status:
                    return response
                raise _bad_status(response, url)
        time.sleep(backoff_s(attempt, backoff_base_s))
        attempt += 1


def open_stream(
    purpose: str, method: str, url: str, *, timeout: Timeouts, via: httpx.Client | None = None, **kwargs: Any
) -> httpx.Response:
    """An open streamed response whose status is below 400 (a 4xx or 5xx is read, closed and raised
    as BadStatus); read it with `lines`, or close it."""
    http = via or _shared_client(purpose)
    try:
        response = http.send(http.build_request(method, url, timeout=timeout, **kwargs), stream=True)
    except httpx.HTTPError as error:
        raise _transport_failure(error, url, timeout) from error
    if response.status_code >= 400:
        try:
            raise _bad_status(response, url)
        finally:
            response.close()
    return response


def lines(response: httpx.Response) -> Iterator[str]:
    """A streamed response's non-blank lines; a stream that breaks raises TimedOut or Unreachable.
    The response is closed at the end."""
    url = str(response.request.url)
    try:
        for line in response.iter_lines():
            if line.strip():
                yield line
    except httpx.HTTPError as error:
        raise _transport_failure(error, url, response.request.extensions.get("timeout", {}).get("read")) from error
    finally:
        response.close()


def json_of(response: httpx.Response) -> Any:
    """The answer's JSON, or BadResponse."""
    try:
        return response.json()
    except ValueError:
        raise BadResponse("answered with invalid JSON", url=str(response.request.url)) from None


def gateway_error(error: OutboundError, who: str) -> BadGatewayError | GatewayTimeoutError:
    """The 504 or 502 of a request that waited on a call to `who` ("hook at <url>", "the LLM
    backend"), with the upstream's words (300 characters at most)."""
    if isinstance(error, TimedOut):
        within = f"within {error.timeout_s:g}s" if error.timeout_s else "in time"
        return GatewayTimeoutError(f"{who} did not answer {within}")
    if isinstance(error, BadStatus):
        return BadGatewayError(f"{who} answered {error.status}: {error.text[:300]}")
    if isinstance(error, BadResponse):
        return BadGatewayError(f"{who} answered with invalid JSON")
    return BadGatewayError(f"{who} is unreachable: {error}")
