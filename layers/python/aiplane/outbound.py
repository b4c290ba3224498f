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
import time
from collections.abc import Collection, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, TypeAlias

from aiplane.errors import BadGatewayError, GatewayTimeoutError
from aiplane.observability import trace_http_clients
from aiplane.outbound_policy import OutboundPolicy
from aiplane.snapshots import warm_before_snapshot

if TYPE_CHECKING:  # at run time httpx is imported in the functions that use it (see load_http)
    import httpx

MAX_REDIRECTS = 5


@warm_before_snapshot
def load_http() -> None:
    """httpx (and the checked transport) are imported with the first client or call, not at init:
    about 50 ms of a cold start that a function whose request never calls out does not pay. Loaded
    before a SnapStart snapshot, so a restored function has them."""
    import aiplane.outbound_transport  # noqa: F401


def client(
    purpose: str, *, policy: OutboundPolicy | None = None, limits: httpx.Limits | None = None, **kwargs: Any
) -> httpx.Client:
    """An httpx client whose every connection passes the policy (the environment's unless given)."""
    import httpx

    from aiplane.outbound_transport import CheckedTransport

    trace_http_clients()
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    return httpx.Client(transport=CheckedTransport(purpose, policy, limits), max_redirects=MAX_REDIRECTS, **kwargs)


@cache
def _shared_client(purpose: str) -> httpx.Client:
    return client(purpose)


def request(purpose: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """`httpx.request` through the purpose's checked client (pass follow_redirects=True to follow)."""
    return _shared_client(purpose).request(method, url, **kwargs)


# ---- calls: timeouts, retries and the failures a call site maps --------------------------------

Timeouts: TypeAlias = "float | httpx.Timeout"  # seconds for every phase, or per phase
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
        import httpx

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
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return TimedOut(error, url=url, timeout_s=timeout.read if isinstance(timeout, httpx.Timeout) else timeout)
    return Unreachable(error, url=url)


def _bad_status(response: httpx.Response, url: str) -> BadStatus:
    import httpx

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
    import httpx

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
    import httpx

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
    import httpx

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
