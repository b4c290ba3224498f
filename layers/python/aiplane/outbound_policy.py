"""The outbound-URL policy: one check for every URL a user (or an agent) can make this system call.

Purposes: LLM backends, hooks (remote hooks and the webhook hook), GPU agents, marketplaces, and
appproxy kernels (the hosts a circuit sends traffic to: checked where a manager names them, since
the appproxy workers that connect are not this code).
An address is refused when it is link-local or a cloud metadata service (always), or when it is
not public and the environment's allowlist for the purpose does not admit it
(`outbound_allowlists` in aiplane_shared/environments.py).

The check runs where a URL is set (`check_url`; a name that does not resolve yet passes) and at
every connection the clients of `aiplane.outbound` open. This module holds the policy alone, without
an HTTP client, so that code which only sets URLs (registries, chain definitions) does not import httpx.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from urllib.parse import urlsplit

from aiplane.errors import ValidationError
from aiplane.settings import get_settings
from aiplane_shared.environments import get_environment

BACKENDS, HOOKS, AGENTS, MARKETPLACES, KERNELS = "backends", "hooks", "agents", "marketplaces", "kernels"

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
