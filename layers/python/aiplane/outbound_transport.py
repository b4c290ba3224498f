"""The transport of outbound clients (`aiplane.outbound.client`): httpx's, with a pool that connects
only to addresses the outbound-URL policy admits, and to exactly the address it checked.

Imported with the first client (`outbound.load_http`), not at init.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from functools import cache
from typing import Any

import httpcore
import httpx

from aiplane import outbound_policy
from aiplane.outbound_policy import OutboundPolicy


class CheckedNetwork(httpcore.SyncBackend):
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
def ssl_context() -> ssl.SSLContext:
    """One TLS context for every client of the process: each load of the CA bundle costs 25-50 ms
    of a cold start, and httpx would load it once per transport."""
    return httpx.create_ssl_context()


class CheckedTransport(httpx.HTTPTransport):
    def __init__(self, purpose: str, policy: OutboundPolicy | None, limits: httpx.Limits) -> None:
        super().__init__(verify=ssl_context(), limits=limits)
        # httpx builds its pool without a way to name the network backend; this pool connects through the policy.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedNetwork(purpose, policy),
        )
