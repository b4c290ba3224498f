"""The outbound-URL policy: which addresses each purpose reaches, checked before any connection.

Only 127.0.0.0/8 is ever connected to; every other address is refused (or resolved by a fake
resolver) before a socket opens.
"""

from __future__ import annotations

import ipaddress

import pytest

from aiplane import outbound, outbound_policy
from aiplane.outbound_policy import AGENTS, BACKENDS, HOOKS, MARKETPLACES, OutboundPolicy, OutboundRefused
from aiplane_shared.environments import get_environment
from tests.standins import LoopbackServer, StandInHandler


def policy(environment: str, names: dict[str, list[str]] | None = None) -> OutboundPolicy:
    """The environment's allowlists with a fake DNS: a name not in `names` does not resolve."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in (names or {}):
            raise OSError(f"{host}: no such name")
        return names[host]

    return OutboundPolicy(environment, get_environment(environment).outbound_allowlists, resolve)


@pytest.mark.parametrize("environment", ["local", "dev", "prod"])
@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "255.255.255.255",
    ],
)
def test_link_local_and_metadata_addresses_are_refused_everywhere(environment, address):
    for purpose in (BACKENDS, HOOKS, AGENTS, MARKETPLACES):
        assert "refused for every purpose" in policy(environment).refusal(ipaddress.ip_address(address), purpose)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_admitted(address):
    assert policy("prod").refusal(ipaddress.ip_address(address), HOOKS) is None


def test_loopback_and_private_need_the_purposes_allowlist():
    prod, local = policy("prod"), policy("local")
    loopback, private, ula = (ipaddress.ip_address(a) for a in ("127.0.0.1", "10.1.2.3", "fd12::1"))
    for address in (loopback, ipaddress.ip_address("::1"), ipaddress.ip_address("::ffff:127.0.0.1")):
        assert "loopback address, which the prod environment's hooks allowlist" in prod.refusal(address, HOOKS)
        assert prod.refusal(address, BACKENDS) is not None
    assert prod.refusal(private, BACKENDS) is None and prod.refusal(ula, BACKENDS) is None  # LLMs in the VPC
    assert prod.refusal(private, AGENTS) is None
    assert "private address" in prod.refusal(private, HOOKS) and prod.refusal(private, MARKETPLACES)
    assert prod.refusal(ipaddress.ip_address("100.64.0.1"), BACKENDS)  # shared address space: not listed
    # make run: loopback for backends, hooks, agents and stand-in marketplaces; hooks still not private
    assert all(local.refusal(loopback, purpose) is None for purpose in (BACKENDS, HOOKS, AGENTS, MARKETPLACES))
    assert local.refusal(private, HOOKS) is not None


def test_every_resolved_address_is_checked():
    checked = policy(
        "prod",
        {
            "public.test": ["93.184.216.34"],
            "mixed.test": ["93.184.216.34", "169.254.169.254"],
            "inside.test": ["10.0.0.7"],
        },
    )
    checked.check_url("https://public.test/hook", HOOKS)
    with pytest.raises(OutboundRefused, match="outbound-URL policy: hooks may not reach mixed.test: 169.254.169.254"):
        checked.check_url("https://mixed.test/hook", HOOKS, param="endpointUrl")
    with pytest.raises(OutboundRefused) as refused:
        checked.check_url("http://inside.test:8080/", HOOKS, param="endpointUrl")
    assert refused.value.status == 400 and refused.value.param == "endpointUrl"
    checked.check_url("http://inside.test:8080/", BACKENDS)
    checked.check_url("http://not-yet-in-dns.test/", HOOKS)  # checked again when it is called
    with pytest.raises(OutboundRefused):
        checked.check_url("http://[fd00:ec2::254]/latest/meta-data/", BACKENDS)
    with pytest.raises(OutboundRefused):
        checked.check_url("http://h.test:99999/", BACKENDS)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://0177.0.0.1/",
    ],
)
def test_other_spellings_of_loopback_are_refused(url):
    # the system resolver reads these without asking DNS; the address it yields is what is checked
    deployed = OutboundPolicy("prod", get_environment("prod").outbound_allowlists)
    with pytest.raises(OutboundRefused, match="loopback"):
        deployed.check_url(url, HOOKS)


def test_a_host_name_that_is_not_a_dns_name_is_left_to_the_call():
    policy("prod").check_url("http://" + "a" * 64 + ".test/", HOOKS)
    OutboundPolicy("prod", {}).check_url("http://" + "a" * 64 + ".test/", HOOKS)


class _Recorder(StandInHandler):
    """Records each request; /redirect?to=<url> answers 302 to <url>."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Host", "")))
        if self.path.startswith("/redirect?to="):
            self.redirect(302, self.path.split("=", 1)[1])
            return
        self.send_body(200, b"ok", content_type=None)


@pytest.fixture
def server():
    _Recorder.seen = []
    with LoopbackServer(_Recorder) as http:
        yield http.port


def test_the_client_refuses_before_connecting(server):
    with outbound.client(HOOKS, policy=policy("prod")) as client, pytest.raises(OutboundRefused, match="loopback"):
        client.get(f"http://127.0.0.1:{server}/latest/meta-data/")
    assert _Recorder.seen == []


def test_the_client_connects_to_the_address_it_checked(server):
    # The name resolves once, for the check, and the socket goes to that address (no rebinding);
    # the request still names the host.
    names = {"hooks.test": ["127.0.0.1"], "two.test": ["127.0.0.2", "127.0.0.1"]}  # nothing listens on .2
    with outbound.client(HOOKS, policy=policy("local", names)) as client:
        assert client.get(f"http://hooks.test:{server}/x").text == "ok"
        assert client.get(f"http://two.test:{server}/y").text == "ok"  # the next checked address
    assert _Recorder.seen == [("/x", f"hooks.test:{server}"), ("/y", f"two.test:{server}")]


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://inside.test/admin"])
def test_each_redirect_is_checked(server, target):
    names = {"inside.test": ["10.0.0.9"]}
    with outbound.client(HOOKS, policy=policy("local", names)) as client, pytest.raises(OutboundRefused):
        client.get(f"http://127.0.0.1:{server}/redirect?to={target}", follow_redirects=True)
    assert [path for path, _ in _Recorder.seen] == [f"/redirect?to={target}"]


def test_the_environment_policy_follows_the_environment():
    assert outbound_policy.environment_policy().environment == "local"
    outbound_policy.check_url("http://127.0.0.1:11434", BACKENDS)
    with pytest.raises(OutboundRefused):
        outbound_policy.check_url("http://169.254.169.254/", HOOKS)
