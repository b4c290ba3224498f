"""The outbound-URL policy: one check for every URL a user (or an agent) can make this system call.

Purposes: LLM backends, hooks (remote hooks and the webhook hook), GPU agents, marketplaces, and
appproxy kernels (the hosts a circuit sends traffic to: checked where a manager names them, since
the appproxy workers that connect are not this code).
An address is refused when it is link-local or a cloud metadata service (always), or when it is
not public and the environment's allowlist for the purpose does not admit it
(`outbound_allowlists` in aiplane_shared/environments.py).

The check runs where a URL is set (`check_url`; a name that does not resolve yet passes) and at
every connection the clients of this module open: the socket connects to the very address that
was checked (no DNS rebinding between check and connect), and a redirect's connection is checked
anew. TLS still verifies the certificate against the URL's host name.

Calls go through `send` (or `open_stream` and `lines` for a streamed answer): a per-call timeout,
opt-in jittered retries of transient failures, and failures as `OutboundError`s (`TimedOut`,
`Unreachable`, `BadStatus`, `BadResponse`), which each call site turns into its family's error in
one place (`gateway_error` for the 502/504 of a request waiting on the call). A policy refusal is
`OutboundRefused`, a 400 wherever it surfaces: it is not an OutboundError, so no site's mapping of
upstream failures swallows it.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import ssl
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from aiplane.errors import BadGatewayError, GatewayTimeoutError, ValidationError
from aiplane.observability import trace_http_clients
from aiplane.settings import get_settings
from aiplane_shared.environments import get_environment

BACKENDS, HOOKS, AGENTS, MARKETPLACES, KERNELS = "backends", "hooks", "agents", "marketplaces", "kernels"
MAX_REDIRECTS = 5
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Never reachable, whatever an allowlist says: link-local (169.254.169.254 is the EC2, ECS, GCP
# and Azure metadata service), AWS's IPv6 instance services (fd00:ec2::254 metadata, ::253 DNS),
# Alibaba's metadata address, "this host" (0.0.0.0 and :: reach loopback), multicast, reserved.
ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(network)
    for network in (
        "169.254.0.0/16",
        "fe80::/10",
        "fd00:ec2::/32",
        "100.100.100.200/32",
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "ff00::/8",
        "240.0.0.0/4",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(ValidationError):
    """A URL, or a redirect, leads to an address the outbound-URL policy refuses (a 400)."""


def _forms(address: Address) -> list[Address]:
    """The address (an IPv4-mapped one as IPv4) and every IPv4 address it embeds (6to4, Teredo,
    NAT64): all must pass."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return [address.ipv4_mapped]
    forms: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        forms += [embedded for embedded in (address.sixtofour, *(address.teredo or ())) if embedded]
        if address in _NAT64:
            forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return forms


def system_resolver(host: str, port: int) -> list[str]:
    return list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


class OutboundPolicy:
    """Which addresses each purpose may reach; `resolver` is injectable so tests never connect."""

    def __init__(
        self, environment: str, allowlists: Mapping[str, Iterable[str]], resolver: Resolver = system_resolver
    ) -> None:
        self.environment = environment
        self.allowlists = {
            purpose: tuple(ipaddress.ip_network(n) for n in networks) for purpose, networks in allowlists.items()
        }
        self.resolver = resolver

    def refusal(self, address: Address, purpose: str) -> str | None:
        """Why the address is refused for the purpose, or None when it is admitted."""
        forms = _forms(address)
        for form in forms:
            if any(form in network for network in ALWAYS_REFUSED):
                return f"{form} is link-local, a cloud metadata service or never routable (refused for every purpose)"
        allowed = self.allowlists.get(purpose, ())
        if all(form.is_global for form in forms) or any(form in network for form in forms for network in allowed):
            return None
        kind = (
            "loopback"
            if any(form.is_loopback for form in forms)
            else "private"
            if any(form.is_private for form in forms)
            else "non-public"
        )
        return (
            f"{address} is a {kind} address, which the {self.environment} environment's "
            f"{purpose} allowlist (outbound_allowlists) does not admit"
        )

    def addresses(self, host: str, port: int) -> list[Address]:
        """The host's addresses (a literal address is itself); OSError when the name does not resolve."""
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            resolved = self.resolver(host, port)
        except UnicodeError as error:  # not a valid DNS name (a label over 63 characters, say)
            raise OSError(f"{host} is not a valid host name: {error}") from None
        return [ipaddress.ip_address(address.split("%", 1)[0]) for address in resolved]

    def admitted(self, host: str, port: int, purpose: str, *, param: str | None = None) -> list[Address]:
        """Every address of the host, each checked; OutboundRefused when any one is refused."""
        addresses = self.addresses(host, port)
        if not addresses:
            raise OSError(f"{host} has no address")
        for address in addresses:
            reason = self.refusal(address, purpose)
            if reason:
                raise OutboundRefused(f"outbound-URL policy: {purpose} may not reach {host}: {reason}", param=param)
        return addresses

    def check_url(self, url: str, purpose: str, *, param: str | None = None) -> None:
        """Where a URL is set: refuse it when it leads to a refused address."""
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise OutboundRefused(f"outbound-URL policy: {url!r} has an invalid port", param=param) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundRefused(f"outbound-URL policy: {purpose} URLs must be http(s) URLs with a host", param=param)
        self.check_host(parts.hostname, port, purpose, param=param)

    def check_host(self, host: str, port: int, purpose: str, *, param: str | None = None) -> None:
        """Where a host is set: refuse it when it leads to a refused address."""
        try:
            self.admitted(host, port, purpose, param=param)
        except OSError:
            pass  # not resolvable now; every connection is checked again when it is made


@cache
def environment_policy() -> OutboundPolicy:
    environment = get_settings().environment
    return OutboundPolicy(environment, get_environment(environment).outbound_allowlists)


def check_url(url: str, purpose: str, *, param: str | None = None) -> None:
    environment_policy().check_url(url, purpose, param=param)


def check_host(host: str, port: int, purpose: str, *, param: str | None = None) -> None:
    environment_policy().check_host(host, port, purpose, param=param)


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
        policy = self.policy or environment_policy()
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
