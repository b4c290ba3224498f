"""GPU agent URLs (at the proxy call) and marketplace endpoints go through the outbound-URL
policy: metadata addresses are refused everywhere, loopback where the environment does not
admit it, always with a 400 before anything connects."""

from __future__ import annotations

import pytest

from aiplane import outbound_policy
from aiplane.gpufarm import loadbalancer, proxy
from aiplane.gpufarm.catalog import list_offers
from aiplane.gpufarm.loadbalancer import AgentLoad
from aiplane.gpufarm.marketplaces import MARKETPLACES
from aiplane.gpufarm.offers import Filters
from aiplane.identity.principal import USER, Principal
from aiplane.outbound_policy import OutboundPolicy, OutboundRefused
from aiplane_shared.environments import get_environment

CALLER = Principal(id="user-1", kind=USER, credential="api_key")


def agent_at(monkeypatch, url: str) -> None:
    agent = AgentLoad("i-forged", url, connections=0, load=0.0, response_time_ms=1.0)
    monkeypatch.setattr(loadbalancer, "agent_load", lambda *args, **kwargs: agent)
    monkeypatch.setattr(loadbalancer, "pick_agent", lambda *args, **kwargs: agent)


@pytest.mark.parametrize("url", ["http://169.254.169.254", "http://[fd00:ec2::254]:80", "http://[fe80::1]:8000"])
def test_the_proxy_never_reaches_a_metadata_address(monkeypatch, url):
    agent_at(monkeypatch, url)
    with pytest.raises(OutboundRefused) as refused:
        proxy.forward(CALLER, "GET", "i-forged", "/latest/meta-data/", None, 1.0)
    assert refused.value.status == 400 and "outbound-URL policy: agents" in refused.value.message


def test_deployed_agents_are_reached_on_private_addresses_only(monkeypatch):
    prod = OutboundPolicy("prod", get_environment("prod").outbound_allowlists)
    monkeypatch.setattr(outbound_policy, "environment_policy", lambda: prod)
    agent_at(monkeypatch, "http://127.0.0.1:9")
    with pytest.raises(OutboundRefused, match="loopback"):
        proxy.forward(CALLER, "POST", None, "/v1/inference", {}, 1.0)
    assert prod.refusal(prod.addresses("10.0.12.7", 8000)[0], outbound_policy.AGENTS) is None


def test_a_marketplace_url_the_policy_refuses_is_reported_not_fetched(marketplaces, set_setting):
    vast, _ = marketplaces
    set_setting("AIPLANE_VASTAI_API_URL", "http://169.254.169.254")
    with pytest.raises(OutboundRefused):
        MARKETPLACES["vastai"].offers()
    offers, errors = list_offers("vastai", Filters())
    assert offers == [] and "outbound-URL policy: marketplaces" in errors[0]["error"]
